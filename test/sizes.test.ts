/** Unpacked layer sizes (docker's SIZE) for plain, gzip and zstd layers, with and without a size in the header. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MediaType } from '../src/oci/mediatype.js';
import { ContentStore } from '../src/store/store.js';
import { listImageSummaries, unpackedLayerSize } from '../src/system.js';
import { tag } from '../src/store/images.js';
import { randomImage, tarOf, testdir } from './kit/index.js';

describe('unpacked layer sizes', () => {
  it('reads gzip trailers and zstd headers, else counts once and remembers', async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    const tar = tarOf({ a: randomBytes(100_000), b: Buffer.alloc(300_000, 1) });
    const put = async (data: Buffer, mediaType: string) => ({ mediaType, ...(await store.putBytes(data)) });
    expect(await unpackedLayerSize(store, await put(tar, MediaType.OCI_LAYER))).toBe(tar.length);
    expect(await unpackedLayerSize(store, await put(gzipSync(tar), MediaType.OCI_LAYER_GZIP))).toBe(tar.length);
    const f = join(root, 't.tar');
    await writeFile(f, tar);
    // From a file zstd writes the content size in the frame header; from a pipe it does not.
    const withSize = execFileSync('zstd', ['-q', '-c', f]);
    const streamed = execFileSync('zstd', ['-q', '-c'], { input: tar });
    expect(await unpackedLayerSize(store, await put(withSize, MediaType.OCI_LAYER_ZSTD))).toBe(tar.length);
    const s = await put(streamed, MediaType.OCI_LAYER_ZSTD);
    expect(await unpackedLayerSize(store, s)).toBe(tar.length);
    expect(await readFile(join(root, 'sizes', s.digest.slice(7)), 'utf8')).toBe(String(tar.length));
  });

  it("a listing remembers each root's row in one file; tags stay live, a damaged file is rebuilt", async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    const img = await randomImage(store, { name: 'berth.test/a:1', layers: 3 });
    const first = await listImageSummaries(store);
    expect(first).toHaveLength(1);
    const cachePath = join(root, 'sizes', 'summaries.json');
    const cached = JSON.parse(await readFile(cachePath, 'utf8'));
    expect(cached.rows[img.root.digest]).toMatchObject({ ID: first[0]!.ID, Size: first[0]!.Size, ContentSize: first[0]!.ContentSize });
    // a new tag of the same root: the name comes from index.json, the rest from the file
    await tag(store, 'berth.test/b:2', img.root);
    const second = await listImageSummaries(store);
    expect(second.map((r) => `${r.Repository}:${r.Tag}`).sort()).toEqual(['berth.test/a:1', 'berth.test/b:2']);
    expect(new Set(second.map((r) => r.Size))).toEqual(new Set([first[0]!.Size]));
    await writeFile(cachePath, '{not json');
    expect((await listImageSummaries(store)).map((r) => r.Size)).toEqual(second.map((r) => r.Size));
    expect(JSON.parse(await readFile(cachePath, 'utf8')).rows[img.root.digest].Size).toBe(first[0]!.Size);
  });
});
