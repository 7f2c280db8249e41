/**
 * Writing new images into the store: `putLayer` (a tar stream becomes a compressed layer blob,
 * in one pass) and `commitImage` (config + manifest + names). Every image berth assembles
 * itself (rootfs import, container commit, the builder) goes through `commitImage`.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressStream, type Compression } from '../archive/compress.js';
import { BerthError, fromSystemError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import { canonicalJson, DigestStream, sha256 } from '../oci/digest.js';
import { MediaType } from '../oci/mediatype.js';
import { parseReference } from '../oci/reference.js';
import type { Descriptor, Digest, ImageConfig, Manifest } from '../oci/types.js';
import { keepImage, tag } from './images.js';
import type { ContentStore } from './store.js';

export interface PutLayerOptions extends OpOptions {
  /** How the blob is compressed (default gzip). */
  compression?: Compression;
  /** gzip 1..9, zstd 1..19 (defaults: zlib's 6, zstd's 3). */
  level?: number;
  /** What to call the layer in messages and progress. */
  what?: string;
}

export interface PutLayerResult {
  /** The blob as stored (OCI layer media type for the compression). */
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar: what the image config's rootfs.diff_ids lists. */
  diffId: Digest;
}

const LAYER_TYPE: Record<Compression, string> = { none: MediaType.OCI_LAYER, gzip: MediaType.OCI_LAYER_GZIP, zstd: MediaType.OCI_LAYER_ZSTD };

/**
 * Store an uncompressed layer tar as a blob: the tar is hashed (diff id) and compressed, and
 * the compressed bytes hashed (digest) as they flow into an ingest; nothing is buffered. The
 * blob is committed (verified, renamed into place) before this resolves. Call it inside
 * `store.withLease` so gc leaves the blob alone until an image refers to it.
 */
export async function putLayer(store: ContentStore, tar: Readable, opts: PutLayerOptions = {}): Promise<PutLayerResult> {
  const compression = opts.compression ?? 'gzip';
  if (!(compression in LAYER_TYPE)) throw new BerthError('INVALID_ARGUMENT', `layer compression ${JSON.stringify(compression)} is not one of none, gzip, zstd`);
  const what = opts.what ?? 'layer';
  const diff = new DigestStream();
  const w = await store.ingest({ resume: false });
  opts.onProgress?.({ type: 'blob-start', digest: what, size: 0, mediaType: LAYER_TYPE[compression] });
  try {
    const o = opts.signal ? { signal: opts.signal } : {};
    if (compression === 'none') await pipeline(tar, diff, w.writable(), o);
    else await pipeline(tar, diff, compressStream(compression, opts.level, what), w.writable(), o);
  } catch (e) {
    await w.close(false);
    tar.destroy();
    if (opts.signal?.aborted) throw new BerthError('ABORTED', `${what}: aborted`, { cause: e });
    throw e instanceof BerthError ? e : fromSystemError(e, `writing ${what}`);
  }
  const committed = await w.commit({ what });
  opts.onProgress?.({ type: 'blob-done', digest: committed.digest, size: committed.size });
  return { descriptor: { mediaType: LAYER_TYPE[compression], digest: committed.digest, size: committed.size }, diffId: diff.digest() };
}

/**
 * The manifest of an image: config + layers, as OCI (default) or Docker schema2 (what a legacy
 * `docker save` archive implies). Pure: the bytes and their descriptor. commitImage writes it;
 * load uses it for archives that carry no manifest of their own.
 */
export function buildManifest(config: Descriptor, layers: readonly Descriptor[], opts: { format?: 'oci' | 'docker'; annotations?: Record<string, string> } = {}): { bytes: Buffer; descriptor: Descriptor } {
  const mediaType = opts.format === 'docker' ? MediaType.DOCKER_MANIFEST : MediaType.OCI_MANIFEST;
  const m: Manifest = {
    schemaVersion: 2,
    mediaType,
    config,
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.annotations ? { annotations: l.annotations } : {}) })),
    ...(opts.annotations && Object.keys(opts.annotations).length > 0 ? { annotations: opts.annotations } : {}),
  };
  const bytes = canonicalJson(m);
  return { bytes, descriptor: { mediaType, digest: sha256(bytes), size: bytes.length } };
}

export interface CommitImageOptions {
  /** The image config; its rootfs.diff_ids must list one diff id per layer. */
  config: ImageConfig;
  /** The layer blobs, base first; each must be in the store already. */
  layers: readonly Descriptor[];
  /** Names (NAME[:TAG]) to point at the new manifest. Checked before anything is written. */
  name?: string | readonly string[];
  /** Manifest annotations. */
  annotations?: Record<string, string>;
  /** With no name: keep the image as an untagged one (docker's `<none>`; default true). */
  keep?: boolean;
  signal?: AbortSignal;
}

export interface CommitImageResult {
  manifest: Descriptor;
  config: Descriptor;
  /** Docker's image id: the config digest. */
  imageId: Digest;
  /** The full names tagged. */
  names: string[];
}

/**
 * Write an image (an OCI config and manifest) for layers already in the store, and tag it.
 * Bad input (a name that is no NAME[:TAG], diff_ids that do not match the layers, a missing
 * layer) fails before anything is written.
 */
export async function commitImage(store: ContentStore, opts: CommitImageOptions): Promise<CommitImageResult> {
  const names = opts.name === undefined ? [] : typeof opts.name === 'string' ? [opts.name] : [...opts.name];
  for (const n of names) {
    const r = parseReference(n);
    if (r.digest) throw new BerthError('INVALID_ARGUMENT', `cannot name a new image with a digest (${n})`, { hint: 'give NAME[:TAG]' });
  }
  const diffIds = opts.config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== opts.layers.length) {
    throw new BerthError('INVALID_ARGUMENT', `image config lists ${diffIds?.length ?? 0} diff_ids for ${opts.layers.length} layers`);
  }
  return store.withLease(async () => {
    for (const l of opts.layers) {
      if (!(await store.exists(l))) throw new BerthError('NOT_FOUND', `layer ${l.digest} is not in the store`, { hint: 'store it with putLayer first' });
    }
    opts.signal?.throwIfAborted();
    const cfgBytes = canonicalJson(opts.config);
    const cfg = await store.putBytes(cfgBytes, { what: 'image config' });
    const config: Descriptor = { mediaType: MediaType.OCI_CONFIG, digest: cfg.digest, size: cfg.size };
    const built = buildManifest(config, opts.layers, opts.annotations ? { annotations: opts.annotations } : {});
    await store.putBytes(built.bytes, { digest: built.descriptor.digest, what: 'image manifest' });
    const manifest = built.descriptor;
    const tagged: string[] = [];
    for (const n of names) tagged.push(await tag(store, n, manifest));
    // With no name the image is kept untagged (docker's <none>:<none>), unless the caller names it later.
    if (!names.length && opts.keep !== false) await keepImage(store, manifest);
    return { manifest, config, imageId: cfg.digest, names: tagged };
  });
}
