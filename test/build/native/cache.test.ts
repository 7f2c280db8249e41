/**
 * Build cache accounting through the CLI with the built-in builder (real runc): `system df`'s
 * Build Cache row; `image prune` keeps the layers cache records point at (a rebuild after it is
 * all cache hits); `builder prune` and `system prune` remove records and cache mounts (a rebuild
 * runs again), but never a cache mount a running build holds.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { storeCorpusBase } from '../corpus.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { ContentStore } from '../../../src/store/store.js';
import { BERTH_BIN, runBerth, testdir } from '../../kit/index.js';

const isRoot = process.getuid?.() === 0;

async function storeWithBase(dir: string): Promise<string> {
  const root = join(dir, 'root');
  const layout = join(dir, 'base-layout');
  await storeCorpusBase(await ContentStore.open(root), layout);
  return root;
}

const stepRecords = (root: string) => readdirSync(join(root, 'cache', 'steps')).filter((f) => f.endsWith('.json'));
const cacheMounts = (root: string) => (existsSync(join(root, 'cache', 'mounts')) ? readdirSync(join(root, 'cache', 'mounts')) : []);

/** A build through the CLI; its manifest and config digests (the metadata file). */
async function build(root: string, ctx: string, tag: string): Promise<{ code: number; own: string[] }> {
  const meta = join(ctx, `meta-${Math.random().toString(16).slice(2)}.json`);
  const r = await runBerth(['build', '--builder', 'builtin', '-q', '-t', tag, '--metadata-file', meta, ctx], { root, timeoutMs: 120_000 });
  expect(r.stderr).toBe('');
  const m = existsSync(meta) ? (JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>) : {};
  return { code: r.code, own: [m['containerimage.digest'], m['containerimage.config.digest']].filter((d): d is string => !!d).map((d) => d.slice(7)) };
}

describe.skipIf(!isRoot)('build cache accounting (CLI)', () => {
  let dir: string;
  let root: string;
  let ctx: string;
  beforeAll(async () => {
    dir = await testdir('berth-cache-');
    root = await storeWithBase(dir);
    ctx = join(dir, 'ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nRUN --mount=type=cache,target=/c echo x > /c/f && echo y > /y\nRUN echo z > /z\n');
  }, 60_000);

  const blobs = () => readdirSync(join(root, 'content', 'blobs', 'sha256')).sort();

  it('system df shows a Build Cache row; image prune keeps cached layers; builder prune removes them', async () => {
    expect((await build(root, ctx, 'c1')).code).toBe(0);
    expect(stepRecords(root).length).toBe(2);
    expect(cacheMounts(root).length).toBe(1);
    const df = await runBerth(['system', 'df', '--format', 'json'], { root });
    const u = JSON.parse(df.stdout) as { buildCache: { count: number; size: number; reclaimable: number } };
    expect(u.buildCache.count).toBe(3); // two step records, one cache mount
    expect(u.buildCache.size).toBeGreaterThan(0);
    expect(u.buildCache.reclaimable).toBeGreaterThan(0); // the cache mount's bytes at least
    const table = await runBerth(['system', 'df'], { root });
    expect(table.stdout).toMatch(/^Build Cache\s+3\s+/m);

    // The image goes; image prune must leave the layers the records point at.
    expect((await runBerth(['rmi', 'c1'], { root })).code).toBe(0);
    expect((await runBerth(['image', 'prune', '-f'], { root })).code).toBe(0);
    const before = blobs();
    const again = await build(root, ctx, 'c2');
    expect(again.code).toBe(0);
    // Every step was a cache hit: the rebuild wrote no layer, only its manifest and config again.
    expect(blobs().filter((b) => !before.includes(b)).sort()).toEqual([...again.own].sort());

    expect((await runBerth(['rmi', 'c2'], { root })).code).toBe(0);
    const p = await runBerth(['builder', 'prune', '-f'], { root });
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/^Deleted build cache objects: 2 step records, 1 cache mounts$/m);
    expect(p.stdout).toMatch(/^Deleted: sha256:/m);
    expect(stepRecords(root)).toEqual([]);
    expect(cacheMounts(root)).toEqual([]);
    const dfAfter = JSON.parse((await runBerth(['system', 'df', '--format', 'json'], { root })).stdout) as { buildCache: { count: number; size: number } };
    expect(dfAfter.buildCache).toMatchObject({ count: 0, size: 0 });
  }, 240_000);

  it('system prune removes the build cache but never a cache mount a running build holds', async () => {
    const ctx2 = join(dir, 'ctx-slow');
    await mkdir(ctx2, { recursive: true });
    await writeFile(join(ctx2, 'Dockerfile'), 'FROM base\nRUN --mount=type=cache,target=/held echo h > /held/f && sleep 4 && echo done > /d\n');
    expect((await build(root, ctx, 'c3')).code).toBe(0); // a record and a mount nobody holds
    const other = cacheMounts(root);
    expect(other.length).toBe(1);
    const child = spawn(process.execPath, [BERTH_BIN, '--root', root, 'build', '--builder', 'builtin', '-q', '-t', 'slow', ctx2], { stdio: 'ignore' });
    const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    try {
      // Wait (bounded) until the running build holds its cache mount.
      const holds = join(root, 'cache', 'holds');
      for (let i = 0; i < 300 && !(existsSync(holds) && readdirSync(holds).length > 0); i++) await new Promise((r) => setTimeout(r, 50));
      expect(readdirSync(holds).length).toBe(1);
      const held = readFileSync(join(holds, readdirSync(holds)[0]!), 'utf8').trim();
      const p = await runBerth(['system', 'prune', '-f'], { root });
      expect(p.code).toBe(0);
      expect(p.stdout).toContain('Kept 1 cache mounts a running build holds');
      expect(cacheMounts(root)).toEqual([held]);
      expect(p.stdout).toContain(`  ${other[0]}`);
    } finally {
      expect(await exited).toBe(0);
    }
    // The hold went with the build; the next prune takes the mount.
    expect(readdirSync(join(root, 'cache', 'holds'))).toEqual([]);
    const p2 = await runBerth(['system', 'prune', '-f'], { root });
    expect(p2.stdout).not.toContain('Kept');
    expect(cacheMounts(root)).toEqual([]);
  }, 240_000);
});
