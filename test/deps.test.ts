import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The room of a file: its first folder under src/, or the top-level file's name. */
function room(file: string): string {
  const rel = relative(SRC, file);
  return rel.includes('/') ? rel.split('/')[0]! : rel.replace(/\.ts$/, '');
}

// DESIGN.md: cli -> index -> build -> {import, registry, run} -> {snapshot, store, archive} -> oci.
// Within the middle: archive (tar, compression) sits below store, because the store's putLayer
// compresses a layer as it is written; snapshot stands on both (unpack applies layers, diff
// writes them, the lock is the store's). commit.ts (container diff/commit) is at system's rank.
const RANK: Record<string, number> = {
  errors: 0,
  oci: 1,
  archive: 2,
  store: 3,
  snapshot: 4,
  import: 5,
  registry: 5,
  containerd: 5,
  run: 5,
  // pull = copy(registry, store) + tag; push = copy(store, registry): above both, below build.
  pull: 5.5,
  push: 5.5,
  build: 6,
  system: 7,
  commit: 7,
  transports: 7,
  index: 8,
  berth: 8,
  cli: 9,
};

const edges: { from: string; to: string; file: string; spec: string }[] = [];
const thirdParty: { file: string; pkg: string }[] = [];
for (const f of files(SRC)) {
  const text = readFileSync(f, 'utf8');
  for (const m of text.matchAll(/(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
    const spec = m[1] ?? m[2]!;
    if (spec.startsWith('.')) {
      const target = resolve(dirname(f), spec.replace(/\.js$/, '.ts'));
      edges.push({ from: room(f), to: room(target), file: relative(SRC, f), spec });
    } else if (!spec.startsWith('node:')) {
      thirdParty.push({ file: relative(SRC, f), pkg: spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/') });
    }
  }
}

describe('dependency rules (DESIGN.md)', () => {
  it('rooms depend only downwards', () => {
    expect(edges.length).toBeGreaterThan(100);
    expect(edges.some((e) => e.from === 'cli' && e.to === 'index')).toBe(true); // the scan sees real edges
    expect(edges.some((e) => e.from === 'store' && e.to === 'oci')).toBe(true);
    // index.ts and berth.ts are one room, the front door: index re-exports the facade.
    const bad = edges.filter((e) => e.from !== e.to && !(RANK[e.from]! > RANK[e.to]! || (e.from === 'index' && e.to === 'berth')));
    expect(bad.map((e) => `${e.file} -> ${e.spec}`)).toEqual([]);
  });

  it('the front door loads no room at import time (rooms load on first use)', () => {
    // Static value imports from index.ts and berth.ts may only reach errors.ts and berth.ts;
    // everything else is `import type` (erased) or a dynamic import().
    const eager: string[] = [];
    for (const name of ['index.ts', 'berth.ts']) {
      const text = readFileSync(join(SRC, name), 'utf8');
      for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
        if (!/^\.\/(errors|berth)\.js$/.test(m[1]!)) eager.push(`${name} -> ${m[1]}`);
      }
    }
    expect(eager).toEqual([]);
  });

  it('the CLI calls only the facade: src/cli imports cli-local files, index.ts and berth.ts', () => {
    // Value and type imports alike: the CLI's types come through index.ts's re-exports too.
    // PENDING lists the files not yet routed through the facade, each with what it still reaches;
    // the list may only shrink (a file routed through the facade must be taken off it).
    const PENDING: Record<string, string> = {};
    const below = edges.filter((e) => e.from === 'cli' && e.to !== 'cli' && e.to !== 'index' && e.to !== 'berth');
    const offenders = [...new Set(below.map((e) => `cli/${e.file.replace(/^cli\//, '')}`))].sort();
    expect(offenders.filter((f) => !(f in PENDING)).map((f) => `${f}: ${below.filter((e) => 'cli/' + e.file.replace(/^cli\//, '') === f).map((e) => e.spec).join(', ')}`)).toEqual([]);
    // A pending file that no longer reaches below must leave the list.
    expect(Object.keys(PENDING).filter((f) => !offenders.includes(f))).toEqual([]);
  });

  it('the registry room never imports the store (pull and push stand above both)', () => {
    expect(edges.filter((e) => e.from === 'registry' && e.to === 'store').map((e) => `${e.file} -> ${e.spec}`)).toEqual([]);
  });

  it('processes are spawned only in the runc/buildctl/helper wrappers (execa and child_process)', () => {
    // Every file that may start a process, and why. Type-only imports are free.
    const SPAWNERS: Record<string, string> = {
      'run/runc.ts': 'the runc wrapper (execFile for one-shot calls, spawn for run/exec)',
      'build/buildctl.ts': 'the buildctl wrapper (execa)',
      'run/monitor.ts': 'starts the detached monitor process that owns a container',
      'registry/credentials.ts': "docker-credential-* helpers (docker's credential helper protocol)",
      'archive/compress.ts': 'zstd child process where zlib has no zstd (Node < 22.15)',
      'archive/native.ts': 'mknod/setfattr/getfattr helpers where the native addon is not built',
      'snapshot/snapshotter.ts': 'the copy driver copies a tree with cp -a (hard links, xattrs, devices kept)',
    };
    const found: string[] = [];
    for (const f of files(SRC)) {
      const text = readFileSync(f, 'utf8');
      const re = /^(?:import|export)\s+(?!type\b)[^'"]*?from\s+['"](node:child_process|child_process|execa)['"]|import\(\s*['"](node:child_process|child_process|execa)['"]\s*\)/gm;
      if (re.test(text)) found.push(relative(SRC, f));
    }
    expect(found.filter((f) => !(f in SPAWNERS))).toEqual([]);
    // The list names only files that still spawn (a wrapper that stops spawning leaves it).
    expect(Object.keys(SPAWNERS).filter((f) => !found.includes(f))).toEqual([]);
  });

  it('one door per third-party package', () => {
    const doors: Record<string, (file: string) => boolean> = {
      'tar-stream': (f) => f.startsWith('archive/'),
      undici: (f) => f.startsWith('registry/'),
      execa: (f) => f === 'build/buildctl.ts', // DESIGN: the Runc wrapper starts runc with node:child_process
      yargs: (f) => f.startsWith('cli/'),
      '@grpc/grpc-js': (f) => f.startsWith('containerd/'),
    };
    const bad = thirdParty.filter((t) => (doors[t.pkg] ? !doors[t.pkg]!(t.file) : false));
    expect(bad).toEqual([]);
    // Every third-party import is one of the known doors.
    expect([...new Set(thirdParty.map((t) => t.pkg))].filter((p) => !(p in doors))).toEqual([]);
  });
});
