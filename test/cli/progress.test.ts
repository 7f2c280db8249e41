/** Progress that ends right (issue #9 item 8): plain lines through the built CLI, NDJSON events. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { humanSize } from '../../src/cli/progress.js';
import { ContentStore } from '../../src/store/store.js';
import { randomImage, runBerth, startRegistry, tarOf, testdir } from '../kit/index.js';

const lines = (s: string) => s.split('\n').filter(Boolean);

/** Plain progress lines: the first and last of a verb, never one twice in a row. */
function checkPlain(stderr: string, label: string) {
  const l = lines(stderr).filter((x) => x.startsWith(`${label}: `));
  expect(l.length).toBeGreaterThanOrEqual(1);
  for (let i = 1; i < l.length; i++) expect(l[i]).not.toBe(l[i - 1]);
  expect(l.at(-1)).toMatch(/, done$/);
  expect(stderr).not.toMatch(/\/0B\b/);
  return l;
}

describe('progress', () => {
  it('import, save and load print a true final line once; json events carry media types', async () => {
    const root = await testdir();
    const d = await testdir();
    const tar = tarOf({ 'a.bin': randomBytes(300_000), 'b.txt': 'b' });
    writeFileSync(join(d, 'r.tar'), tar);
    let r = await runBerth(['--progress', 'plain', 'import', join(d, 'r.tar'), 'p:1'], { root });
    expect(r.code, r.stderr).toBe(0);
    let l = checkPlain(r.stderr, 'import');
    expect(l.at(-1)).toBe(`import: 1/1 blobs, ${humanSize(tar.length)}/${humanSize(tar.length)}, done`);
    // from a pipe the size is not known: bytes only, never "/0B"
    r = await runBerth(['--progress', 'plain', 'import', '-', 'p:2'], { root, input: tar });
    l = checkPlain(r.stderr, 'import');
    expect(l.at(-1)).toBe(`import: 1/1 blobs, ${humanSize(tar.length)}/${humanSize(tar.length)}, done`);

    const img = await randomImage(await ContentStore.open(root), { name: 's:1', layers: 2 });
    const total = img.root.size + img.manifest.config.size + img.layers.reduce((a, x) => a + x.desc.size, 0);
    r = await runBerth(['--progress', 'plain', 'save', '-o', join(d, 's.tar'), 's:1'], { root });
    expect(r.code, r.stderr).toBe(0);
    l = checkPlain(r.stderr, 'save');
    expect(l.at(-1)).toBe(`save: 4/4 blobs, ${humanSize(total)}/${humanSize(total)}, done`);

    const big = await randomImage(await ContentStore.open(root), { name: 'big:1', layers: 2, layerSize: 2 << 20 });
    r = await runBerth(['save', '-o', join(d, 'b.tar'), 'big:1'], { root });
    const fresh = await testdir();
    r = await runBerth(['--progress', 'plain', 'load', '-i', join(d, 'b.tar')], { root: fresh });
    expect(r.code, r.stderr).toBe(0);
    l = checkPlain(r.stderr, 'load');
    expect(l.at(-1)).toMatch(/^load: 2\/2 blobs, .*, done$/);
    expect(big.layers).toHaveLength(2);

    r = await runBerth(['--progress', 'json', 'load', '-i', join(d, 'b.tar')], { root: await testdir() });
    const events = lines(r.stderr).map((x) => JSON.parse(x));
    const starts = events.filter((e) => e.type === 'blob-start');
    expect(starts.length).toBeGreaterThan(0);
    for (const e of starts) expect(e.mediaType).toMatch(/^application\//);
    for (const e of events) expect(e.time).toMatch(/^\d{4}-/);

    // a truncated archive: no final "done" line, the error is the last line
    const whole = readFileSync(join(d, 'b.tar'));
    writeFileSync(join(d, 't.tar'), whole.subarray(0, whole.length - 3_000_000));
    r = await runBerth(['--progress', 'plain', 'load', '-i', join(d, 't.tar')], { root: await testdir() });
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toMatch(/done$/m);
    expect(lines(r.stderr).at(-1)).toMatch(/^berth: /);
  });

  it('pull and push know their totals from the first line (no jump from 0/1 to 3/3)', async () => {
    const reg = await startRegistry();
    try {
      const root = await testdir();
      const name = `${reg.host}/prog/a:1`;
      await randomImage(await ContentStore.open(root), { name, layers: 3 });
      let r = await runBerth(['--progress', 'plain', 'push', name], { root });
      expect(r.code, r.stderr).toBe(0);
      let l = checkPlain(r.stderr, 'push');
      expect(l[0]).toMatch(/^push: \d\/5 blobs, /);
      r = await runBerth(['--progress', 'plain', 'pull', name], { root: await testdir() });
      expect(r.code, r.stderr).toBe(0);
      l = checkPlain(r.stderr, 'pull');
      for (const x of l) expect(x).toMatch(/^pull: \d\/5 blobs, /);
      const total = l.at(-1)!.match(/, [^/]+\/(\S+), done$/)![1];
      expect(l[0]).toMatch(new RegExp(`/${total.replace('.', '\\.')}(, done)?$`));
      r = await runBerth(['--progress', 'json', 'pull', name], { root: await testdir() });
      const plan = lines(r.stderr).map((x) => JSON.parse(x)).filter((e) => e.type === 'plan');
      expect(plan).toEqual([expect.objectContaining({ type: 'plan', blobs: 5 })]);
    } finally {
      await reg.stop();
    }
  });
});
