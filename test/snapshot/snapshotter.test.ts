import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile, lstat, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { isBerthError } from '../../src/errors.js';
import { canonicalJson, sha256 } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { hostPlatform } from '../../src/oci/platform.js';
import type { Descriptor, ImageConfig, Manifest } from '../../src/oci/types.js';
import { getImage, tagImage, type ImageView } from '../../src/store/images.js';
import { ContentStore } from '../../src/store/store.js';
import { Snapshotter, chainIds, type SnapshotDriver } from '../../src/snapshot/index.js';
import { tarBytes, type TarEntry } from '../fixtures/hostile-layers.js';
import { randomImage, testdir } from '../kit/index.js';

const isRoot = process.getuid?.() === 0;

/** Mount points under `dir` (other test files mount containers at the same time). */
async function mounts(dir: string): Promise<string> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(dir))
    .join('\n');
}

/** Write an image of the given layers (gzip) into the store. */
async function imageOf(store: ContentStore, layers: TarEntry[][], name: string, opts: { badDiffId?: number } = {}): Promise<ImageView> {
  const descs: Descriptor[] = [];
  const diffIds = [];
  for (const [i, entries] of layers.entries()) {
    const tar = tarBytes(entries);
    const c = await store.putBytes(gzipSync(tar));
    descs.push({ mediaType: MediaType.OCI_LAYER_GZIP, digest: c.digest, size: c.size });
    diffIds.push(opts.badDiffId === i ? sha256('wrong') : sha256(tar));
  }
  const p = hostPlatform();
  const config: ImageConfig = { architecture: p.architecture, os: p.os, rootfs: { type: 'layers', diff_ids: diffIds } };
  const cfg = await store.putBytes(canonicalJson(config));
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: cfg.digest, size: cfg.size }, layers: descs };
  const m = await store.putBytes(canonicalJson(manifest));
  await tagImage(store, name, { mediaType: MediaType.OCI_MANIFEST, digest: m.digest, size: m.size });
  return getImage(store, name);
}

const LOWER: TarEntry[] = [
  { name: 'etc/', type: '5' },
  { name: 'etc/hosts', data: 'lower hosts' },
  { name: 'etc/gone', data: 'to be whited out' },
  { name: 'opq/', type: '5' },
  { name: 'opq/old', data: 'hidden by opaque' },
  { name: 'bin/', type: '5' },
  { name: 'bin/tool', data: '#!/bin/sh\n', mode: 0o4755, uid: 0 },
];
const UPPER: TarEntry[] = [
  { name: 'etc/', type: '5' },
  { name: 'etc/.wh.gone' },
  { name: 'etc/new', data: 'upper new' },
  { name: 'opq/', type: '5' },
  { name: 'opq/.wh..wh..opq' },
  { name: 'opq/fresh', data: 'fresh' },
];

describe.skipIf(!isRoot)('chain ids', () => {
  it('follow the OCI definition', () => {
    const a = sha256('a');
    const b = sha256('b');
    expect(chainIds([a, b])).toEqual([a, sha256(`${a} ${b}`)]);
  });
});

for (const driver of ['overlay', 'copy'] as SnapshotDriver[]) {
  describe.skipIf(!isRoot)(`Snapshotter (${driver})`, () => {
    async function setup() {
      const root = await testdir();
      const store = await ContentStore.open(root);
      const snap = await Snapshotter.open(root, { driver });
      return { root, store, snap };
    }

    it('unpacks each layer once, mounts the chain, hides whited-out files, and unmounts cleanly', async () => {
      const { root, store, snap } = await setup();
      const view = await imageOf(store, [LOWER, UPPER], 'berth.test/snap:1');
      const { chainId } = await snap.unpackImage(store, view);
      expect(chainId).toBe(chainIds(view.config.rootfs.diff_ids)[1]);
      expect((await snap.list()).filter((s) => s.kind === 'committed').length).toBe(2);
      // A second image sharing the base layer reuses its snapshot.
      const view2 = await imageOf(store, [LOWER, [{ name: 'other', data: 'o' }]], 'berth.test/snap:2');
      const events: string[] = [];
      await snap.unpackImage(store, view2, { onProgress: (e) => events.push(e.type) });
      expect(events.filter((t) => t === 'blob-start').length).toBe(1);
      expect((await snap.list()).filter((s) => s.kind === 'committed').length).toBe(3);

      await snap.prepare('ctr-1', chainId);
      const target = join(root, 'rootfs');
      await mkdir(target);
      const before = await mounts(root);
      await snap.mount('ctr-1', target);
      try {
        expect(await mounts(root)).toContain(target);
        expect(await readFile(join(target, 'etc/hosts'), 'utf8')).toBe('lower hosts');
        expect(await readFile(join(target, 'etc/new'), 'utf8')).toBe('upper new');
        expect((await readdir(join(target, 'etc'))).sort()).toEqual(['hosts', 'new']);
        expect((await readdir(join(target, 'opq'))).sort()).toEqual(['fresh']);
        expect(((await stat(join(target, 'bin/tool'))).mode & 0o7777)).toBe(0o4755);
        // Writes go to the container's own layer, never to the committed ones.
        await writeFile(join(target, 'etc/hosts'), 'changed');
        await writeFile(join(target, 'created'), 'c');
      } finally {
        await snap.unmount(target);
      }
      expect(await mounts(root)).toBe(before);
      expect(await readdir(target)).toEqual([]);
      // Mounting again (a restarted container) keeps the container's changes.
      await snap.mount('ctr-1', target);
      expect(await readFile(join(target, 'etc/hosts'), 'utf8')).toBe('changed');
      await snap.unmount(target);
      await snap.unmount(target); // not mounted any more: fine
      expect(await mounts(root)).toBe(before);

      // A second container on the same chain does not see the first one's changes.
      await snap.prepare('ctr-2', chainId);
      await snap.mount('ctr-2', target);
      expect(await readFile(join(target, 'etc/hosts'), 'utf8')).toBe('lower hosts');
      await snap.unmount(target);
      expect(await mounts(root)).toBe(before);
    });

    it('commits an active snapshot and mounts a chain on top of it', async () => {
      const { root, store, snap } = await setup();
      const view = await imageOf(store, [LOWER], 'berth.test/snap:c');
      const { chainId } = await snap.unpackImage(store, view);
      await snap.prepare('build-1', chainId);
      const t = join(root, 't');
      await mkdir(t);
      await snap.mount('build-1', t);
      await writeFile(join(t, 'etc/built'), 'by RUN');
      execFileSync('rm', [join(t, 'etc/gone')]);
      await snap.unmount(t);
      await snap.commit('step-1', 'build-1');
      expect((await snap.list()).find((s) => s.key === 'build-1')).toBeUndefined();
      await snap.prepare('ctr', 'step-1');
      await snap.mount('ctr', t);
      expect(await readFile(join(t, 'etc/built'), 'utf8')).toBe('by RUN');
      expect((await readdir(join(t, 'etc'))).sort()).toEqual(['built', 'hosts']);
      await snap.unmount(t);
      const err = await snap.commit('step-1', 'ctr').catch((e: unknown) => e);
      expect(isBerthError(err, 'ALREADY_EXISTS')).toBe(true);
    });

    it('gc removes committed snapshots nothing reaches and keeps those in use', async () => {
      const { store, snap } = await setup();
      const a = await imageOf(store, [LOWER, UPPER], 'berth.test/gc:a');
      const b = await imageOf(store, [[{ name: 'b', data: 'b' }]], 'berth.test/gc:b');
      const c = await imageOf(store, [[{ name: 'c', data: 'c' }]], 'berth.test/gc:c');
      const ca = (await snap.unpackImage(store, a)).chainId;
      const cb = (await snap.unpackImage(store, b)).chainId;
      const cc = (await snap.unpackImage(store, c)).chainId;
      await snap.prepare('ctr-c', cc);
      const removed = await snap.gc(new Set([ca, 'ctr-c']));
      expect(removed).toEqual([cb]);
      const left = (await snap.list()).map((s) => s.key).sort();
      expect(left).toEqual([...chainIds(a.config.rootfs.diff_ids), cc, 'ctr-c'].sort());
      await snap.remove('ctr-c');
      expect((await snap.gc(new Set([ca]))).sort()).toEqual([cc]);
      expect((await snap.gc(new Set())).length).toBe(2);
      expect(await snap.list()).toEqual([]);
    });

    it('rejects an image whose layer does not match its diff_id and leaves nothing behind', async () => {
      const { root, store, snap } = await setup();
      const view = await imageOf(store, [LOWER, UPPER], 'berth.test/bad:1', { badDiffId: 1 });
      const err = await snap.unpackImage(store, view).catch((e: unknown) => e);
      expect(isBerthError(err, 'DIGEST_MISMATCH')).toBe(true);
      expect((err as Error).message).toMatch(/^layer sha256:[a-f0-9]{64}: uncompressed digest sha256:[a-f0-9]{64} does not match the config's diff_id/);
      expect((await snap.list()).length).toBe(1); // the good base layer stays
      expect(await readdir(join(root, 'snapshots', 'tmp'))).toEqual([]);
      const e2 = await snap.mount('nope', root).catch((e: unknown) => e);
      expect(isBerthError(e2, 'NOT_FOUND')).toBe(true);
      const e3 = await snap.prepare('x', 'sha256:' + '0'.repeat(64)).catch((e: unknown) => e);
      expect(isBerthError(e3, 'NOT_FOUND')).toBe(true);
    });

    it('unpacks the same image concurrently without conflict', async () => {
      const { store, snap } = await setup();
      const img = await randomImage(store, { layers: 4, layerSize: 64 * 1024 });
      const view = await getImage(store, img.name);
      const res = await Promise.all([snap.unpackImage(store, view), snap.unpackImage(store, view), snap.unpackImage(store, view)]);
      expect(new Set(res.map((r) => r.chainId)).size).toBe(1);
      expect((await snap.list()).length).toBe(4);
    });
  });
}

describe.skipIf(!isRoot)('Snapshotter (overlay): long chains', () => {
  it('mounts a 120-layer chain (lowerdir paths relative to the snapshots dir)', async () => {
    const root = await testdir();
    const store = await ContentStore.open(root);
    const snap = await Snapshotter.open(root, { driver: 'overlay' });
    const layers = Array.from({ length: 120 }, (_, i) => [{ name: `f${i}`, data: String(i) }]);
    const view = await imageOf(store, layers, 'berth.test/long:1');
    const { chainId } = await snap.unpackImage(store, view);
    await snap.prepare('long', chainId);
    const t = join(root, 't');
    await mkdir(t);
    await snap.mount('long', t);
    try {
      expect((await readdir(t)).length).toBe(120);
      expect(await readFile(join(t, 'f0'), 'utf8')).toBe('0');
      expect((await lstat(join(t, 'f119'))).size).toBe(3);
    } finally {
      await snap.unmount(t);
    }
  });
});
