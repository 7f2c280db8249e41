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
  run: 5,
  build: 6,
  system: 7,
  commit: 7,
  index: 8,
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
    expect(edges.some((e) => e.from === 'cli' && e.to === 'store')).toBe(true);
    const bad = edges.filter((e) => e.from !== e.to && !(RANK[e.from]! > RANK[e.to]!));
    expect(bad.map((e) => `${e.file} -> ${e.spec}`)).toEqual([]);
  });

  it('one door per third-party package', () => {
    const doors: Record<string, (file: string) => boolean> = {
      'tar-stream': (f) => f.startsWith('archive/'),
      undici: (f) => f.startsWith('registry/'),
      execa: (f) => f === 'run/runc.ts' || f === 'build/buildctl.ts',
      yargs: (f) => f.startsWith('cli/'),
    };
    const bad = thirdParty.filter((t) => (doors[t.pkg] ? !doors[t.pkg]!(t.file) : false));
    expect(bad).toEqual([]);
    // Every third-party import is one of the known doors.
    expect([...new Set(thirdParty.map((t) => t.pkg))].filter((p) => !(p in doors))).toEqual([]);
  });
});
