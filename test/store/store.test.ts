import { readdir, readFile, writeFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/oci/digest.js';
import { check, gc } from '../../src/store/gc.js';
import { findImage, getImage, tagImage, untagImage } from '../../src/store/images.js';
import { ContentStore } from '../../src/store/store.js';
import { randomImage, snapshotTree, testdir, validateImage } from '../kit/index.js';

describe('content store', () => {
  it('is a plain OCI image layout', async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    expect(JSON.parse(await readFile(join(root, 'content/oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const idx = JSON.parse(await readFile(join(root, 'content/index.json'), 'utf8'));
    expect(idx).toMatchObject({ schemaVersion: 2, manifests: [] });
    const img = await randomImage(store, { name: 'example.com/a/b:v1' });
    await validateImage(store, img.name);
    const idx2 = JSON.parse(await readFile(join(root, 'content/index.json'), 'utf8'));
    expect(idx2.manifests[0].annotations).toEqual({
      'org.opencontainers.image.ref.name': 'example.com/a/b:v1',
      'io.containerd.image.name': 'example.com/a/b:v1',
    });
    expect(await readdir(join(root, 'ingest'))).toEqual([]);
  });

  it('never makes a mismatching write visible', async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    const data = Buffer.from('some content');
    const before = await snapshotTree(join(root, 'content'));
    await expect(store.putStream(Readable.from([data]), { digest: sha256('other'), size: data.length })).rejects.toThrow(/does not match/);
    await expect(store.putStream(Readable.from([data, data]), { digest: sha256(data), size: data.length })).rejects.toThrow(/more bytes/);
    await expect(store.putStream(Readable.from([data.subarray(2)]), { digest: sha256(data), size: data.length })).rejects.toThrow(/size/);
    expect(await snapshotTree(join(root, 'content'))).toEqual(before);
    expect(await readdir(join(root, 'ingest'))).toEqual([]);
  });

  it('resumes a keyed ingest from what an earlier writer left', async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    const data = Buffer.alloc(300_000, 3);
    const d = sha256(data);
    const w1 = await store.ingest({ expected: d });
    expect(w1.offset).toBe(0);
    await w1.write(data.subarray(0, 100_000));
    await w1.close(); // interrupted: bytes kept
    const w2 = await store.ingest({ expected: d });
    expect(w2.offset).toBe(100_000);
    await w2.write(data.subarray(100_000));
    expect(await w2.commit({ digest: d, size: data.length })).toEqual({ digest: d, size: data.length });
    expect(await store.exists({ digest: d, size: data.length })).toBe(true);
  });

  it('tags, finds by name, id prefix and digest, untags', async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    const img = await randomImage(store, { name: 'alpine:3' });
    expect(img.name).toBe('docker.io/library/alpine:3');
    expect((await findImage(store, 'alpine:3')).desc.digest).toBe(img.root.digest);
    expect((await findImage(store, img.root.digest.slice(7, 19))).desc.digest).toBe(img.root.digest);
    const v = await getImage(store, 'docker.io/library/alpine:3');
    expect((await findImage(store, v.configDesc.digest.slice(7, 20))).desc.digest).toBe(img.root.digest);
    expect((await findImage(store, `alpine@${img.root.digest}`)).desc.digest).toBe(img.root.digest);
    await tagImage(store, 'mine:latest', img.root);
    expect((await store.listImages()).map((r) => r.name).sort()).toEqual(['docker.io/library/alpine:3', 'docker.io/library/mine:latest']);
    await untagImage(store, 'alpine:3');
    await expect(findImage(store, 'alpine:3')).rejects.toThrow(/no such image: alpine:3/);
  });

  it('gc removes what no tag reaches and keeps what a lease holds', async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    const keep = await randomImage(store, { name: 'keep:1' });
    const drop = await randomImage(store, { name: 'drop:1' });
    await untagImage(store, 'drop:1');
    let held = '';
    await store.withLease(async () => {
      held = (await store.putBytes(Buffer.from('in flight'))).digest;
      const r = await gc(store);
      expect(r.removed).toContain(drop.root.digest);
      expect(r.removed).not.toContain(held);
    });
    await validateImage(store, keep.name);
    expect(await store.has({ digest: drop.layers[0]!.desc.digest })).toBe(false);
    // Outside the lease it goes with the next gc.
    expect((await gc(store)).removed).toEqual([held]);
  });

  it('check re-hashes every blob and names a corrupted one', async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    const img = await randomImage(store, { name: 'c:1' });
    expect((await check(store)).problems).toEqual([]);
    const layer = img.layers[1]!.desc.digest;
    const p = store.blobPath(layer);
    const buf = await readFile(p);
    buf[10] ^= 0xff;
    await writeFile(p, buf);
    const r = await check(store);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.digest).toBe(layer);
    await truncate(store.blobPath(img.layers[0]!.desc.digest), 3);
    expect((await check(store)).problems.map((x) => x.digest).sort()).toEqual([img.layers[0]!.desc.digest, layer].sort());
  });
});
