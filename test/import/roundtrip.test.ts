import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { getImage } from '../../src/store/images.js';
import { loadArchive } from '../../src/import/load.js';
import { saveImages, saveImagesToFile } from '../../src/import/save.js';
import { randomImage, testdir, validateImage } from '../kit/index.js';

describe('save and load (berth to berth)', () => {
  it('round-trips several images through the docker format and the bytes are reproducible', async () => {
    const d = await testdir();
    const a = await ContentStore.open(join(d, 'a'));
    const one = await randomImage(a, { name: 'berth.test/one:v1', layers: 3, layerSize: 300_000 });
    const two = await randomImage(a, { name: 'berth.test/two:latest', layers: 2, gzip: false, docker: true, layerSize: 2_000_000 });
    await saveImagesToFile(a, [one.name, 'berth.test/two'], join(d, 'x.tar'));
    await saveImagesToFile(a, [one.name, 'berth.test/two'], join(d, 'y.tar'));
    expect(Buffer.compare(await readFile(join(d, 'x.tar')), await readFile(join(d, 'y.tar')))).toBe(0);
    // A file is written in place, a stream through tar-stream: the same bytes, which tar reads.
    for (const format of ['docker', 'oci'] as const) {
      await saveImagesToFile(a, [one.name, 'berth.test/two'], join(d, `f-${format}.tar`), { format });
      await saveImages(a, [one.name, 'berth.test/two'], createWriteStream(join(d, `s-${format}.tar`)), { format });
      expect(Buffer.compare(await readFile(join(d, `f-${format}.tar`)), await readFile(join(d, `s-${format}.tar`)))).toBe(0);
    }
    expect(execFileSync('tar', ['-tvf', join(d, 'x.tar')]).toString()).toMatch(/^drwxr-xr-x 0\/0 +0 1970-01-01 00:00 blobs\/\n/);

    const b = await ContentStore.open(join(d, 'b'));
    const r = await loadArchive(b, { path: join(d, 'x.tar') });
    expect(r.images.map((i) => i.names).flat().sort()).toEqual(['berth.test/one:v1', 'berth.test/two:latest']);
    for (const img of [one, two]) {
      const v = await getImage(b, img.name);
      expect(v.root.digest).toBe(img.root.digest);
      await validateImage(b, img.name);
    }
    // Loading again writes nothing new.
    const again = await loadArchive(b, { path: join(d, 'x.tar') });
    expect(again.written).toBe(0);
  });

  it('loads gzip, zstd and xz compressed archives (file and stream) and the oci format', async () => {
    const d = await testdir();
    const a = await ContentStore.open(join(d, 'a'));
    const one = await randomImage(a, { name: 'berth.test/one:v1', layers: 2 });
    await saveImagesToFile(a, [one.name], join(d, 'x.tar'), { format: 'oci' });
    execFileSync('gzip', ['-k', join(d, 'x.tar')]);
    execFileSync('zstd', ['-q', join(d, 'x.tar')]);
    execFileSync('xz', ['-k', '-0', join(d, 'x.tar')]);
    for (const f of ['x.tar', 'x.tar.gz', 'x.tar.zst', 'x.tar.xz']) {
      for (const how of ['path', 'stream'] as const) {
        const b = await ContentStore.open(join(d, `b-${how}-${f}`));
        const r = await loadArchive(b, how === 'path' ? { path: join(d, f) } : { stream: createReadStream(join(d, f)) });
        expect(r.images[0]!.names).toEqual(['berth.test/one:v1']);
        await validateImage(b, one.name);
      }
    }
    // A corrupt xz archive: one clear error, nothing tagged.
    const xz = await readFile(join(d, 'x.tar.xz'));
    await writeFile(join(d, 'bad.tar.xz'), xz.subarray(0, xz.length >> 1));
    const c = await ContentStore.open(join(d, 'c'));
    await expect(loadArchive(c, { path: join(d, 'bad.tar.xz') })).rejects.toThrow(/bad\.tar\.xz: .*(truncated|unexpected end|xz)/i);
    expect(await c.listImages()).toEqual([]);
  });
});
