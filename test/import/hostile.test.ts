/**
 * Hostile archives (test/fixtures/archives.ts): each fails with one clear line and a non-zero
 * exit, and leaves the store byte-identical (content listing with sizes and index.json bytes)
 * with no ingest leftovers.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors.js';
import { ContentStore } from '../../src/store/store.js';
import { hostileArchives } from '../fixtures/archives.js';
import { randomImage, runBerth, snapshotTree, testdir } from '../kit/index.js';

const cases = hostileArchives();

describe('berth load refuses hostile archives', () => {
  let all: typeof cases;
  beforeAll(() => {
    all = cases;
  });

  for (const name of Object.keys(cases).filter((n) => !n.startsWith('_'))) {
    it(name, async () => {
      const d = await testdir();
      const root = join(d, 'root');
      const store = await ContentStore.open(root);
      await randomImage(store, { name: 'berth.test/keep:1', layers: 1 });
      const before = await snapshotTree(join(root, 'content'));
      const f = join(d, `${name}.tar`);
      await writeFile(f, all[name]!.data);
      const r = await runBerth(['load', '-q', '-i', f], { root, env: { BERTH_MAX_LAYER_BYTES: String(8 << 20) } });
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^berth: /);
      expect(lines[0]).toMatch(all[name]!.expect);
      expect(r.code).not.toBe(0);
      expect(r.code).not.toBe(EXIT_CODES.INTERNAL);
      expect(r.stdout).toBe('');
      expect(await snapshotTree(join(root, 'content'))).toEqual(before);
      expect(await readdir(join(root, 'ingest'))).toEqual([]);
    });
  }

  it('a valid archive passes the same harness (the harness can tell)', async () => {
    const d = await testdir();
    const root = join(d, 'root');
    const f = join(d, 'ok.tar');
    await writeFile(f, cases._ok!.data);
    const r = await runBerth(['load', '-i', f], { root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('Loaded image: hostile.test/oci:1\n');
  });

  it('reads standard input, and refuses a non-tar there too', async () => {
    const d = await testdir();
    const root = join(d, 'root');
    const ok = await runBerth(['load', '--format', 'json'], { root, input: cases._ok!.data });
    expect(ok.code, ok.stderr).toBe(0);
    const j = JSON.parse(ok.stdout);
    expect(j.images[0].names).toEqual(['docker.io/hostile.test/oci:1'.replace('docker.io/', '')]);
    const bad = await runBerth(['load'], { root, input: cases['not-a-tar']!.data });
    expect(bad.code).toBe(EXIT_CODES.INVALID_ARGUMENT);
    expect(bad.stderr).toMatch(/standard input: not a tar archive/);
  });
});
