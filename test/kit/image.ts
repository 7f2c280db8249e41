import { randomBytes, createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { MediaType } from '../../src/oci/mediatype.js';
import { canonicalJson, sha256 } from '../../src/oci/digest.js';
import { hostPlatform } from '../../src/oci/platform.js';
import type { Descriptor, Digest, ImageConfig, Manifest } from '../../src/oci/types.js';
import { tagImage, getImage } from '../../src/store/images.js';
import type { ContentStore } from '../../src/store/store.js';
import { tarOf } from './tar.js';

export { tarOf };

export interface RandomImageOptions {
  name?: string;
  layers?: number;
  /** Bytes of random data per layer (default 4 KiB). */
  layerSize?: number;
  gzip?: boolean;
  /** Write a Docker schema2 manifest instead of an OCI one. */
  docker?: boolean;
  cmd?: string[];
}

export interface RandomImage {
  name: string;
  root: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  layers: { desc: Descriptor; diffId: Digest; tar: Buffer }[];
}

/** Write a random multi-layer image into the store and tag it. */
export async function randomImage(store: ContentStore, opts: RandomImageOptions = {}): Promise<RandomImage> {
  const n = opts.layers ?? 3;
  const gz = opts.gzip ?? true;
  const layers: RandomImage['layers'] = [];
  for (let i = 0; i < n; i++) {
    const tar = tarOf({ [`layer${i}/data-${randomBytes(4).toString('hex')}.bin`]: randomBytes(opts.layerSize ?? 4096) });
    const blob = gz ? gzipSync(tar) : tar;
    const mediaType = opts.docker ? (gz ? MediaType.DOCKER_LAYER_GZIP : MediaType.DOCKER_LAYER) : gz ? MediaType.OCI_LAYER_GZIP : MediaType.OCI_LAYER;
    const c = await store.putBytes(blob);
    layers.push({ desc: { mediaType, digest: c.digest, size: c.size }, diffId: sha256(tar), tar });
  }
  const p = hostPlatform();
  const config: ImageConfig = {
    created: new Date().toISOString(),
    architecture: p.architecture,
    os: p.os,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: opts.cmd ?? ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: new Date().toISOString(), created_by: `test layer ${i}` })),
  };
  const cfgBytes = canonicalJson(config);
  const cfg = await store.putBytes(cfgBytes);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: opts.docker ? MediaType.DOCKER_MANIFEST : MediaType.OCI_MANIFEST,
    config: { mediaType: opts.docker ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG, digest: cfg.digest, size: cfg.size },
    layers: layers.map((l) => l.desc),
  };
  const mBytes = canonicalJson(manifest);
  const m = await store.putBytes(mBytes);
  const root: Descriptor = { mediaType: manifest.mediaType!, digest: m.digest, size: m.size };
  const name = await tagImage(store, opts.name ?? `berth.test/random-${randomBytes(4).toString('hex')}:latest`, root);
  return { name, root, manifest, config, layers };
}

/** Check that an image in the store is whole: digests, sizes, diff_ids and config agree. */
export async function validateImage(store: ContentStore, name: string): Promise<void> {
  const v = await getImage(store, name);
  expect(v.manifest.layers.length).toBe(v.config.rootfs.diff_ids.length);
  for (const [i, l] of v.manifest.layers.entries()) {
    const s = await store.fetch(l);
    const hash = createHash('sha256');
    const diff = createHash('sha256');
    const { createGunzip } = await import('node:zlib');
    const gz = l.mediaType.endsWith('gzip');
    const gunzip = gz ? createGunzip() : undefined;
    let size = 0;
    const done = new Promise<void>((resolve, reject) => {
      if (gunzip) {
        gunzip.on('data', (c: Buffer) => diff.update(c));
        gunzip.on('end', resolve);
        gunzip.on('error', reject);
      }
      s.on('data', (c: Buffer) => {
        hash.update(c);
        size += c.length;
        if (gunzip) gunzip.write(c);
        else diff.update(c);
      });
      s.on('end', () => {
        if (gunzip) gunzip.end();
        else resolve();
      });
      s.on('error', reject);
    });
    await done;
    expect(size, `layer ${i} size`).toBe(l.size);
    expect(`sha256:${hash.digest('hex')}`, `layer ${i} digest`).toBe(l.digest);
    if (!l.mediaType.endsWith('zstd')) expect(`sha256:${diff.digest('hex')}`, `layer ${i} diff_id`).toBe(v.config.rootfs.diff_ids[i]);
  }
  expect(await store.exists(v.configDesc)).toBe(true);
}
