/**
 * `import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image, as
 * `docker import` does. The tarball is stored as it came (no recompression), hashed once as
 * stored; a compressed one is also decompressed once to get its diff_id and to check it is a tar.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressStream, decompressStream, detectCompression } from '../archive/compress.js';
import { readTarEntries } from '../archive/tar.js';
import { BerthError, fromSystemError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import { DigestStream, CountingStream } from '../oci/digest.js';
import { MediaType } from '../oci/mediatype.js';
import { hostPlatform, normalizePlatform } from '../oci/platform.js';
import { parseReference } from '../oci/reference.js';
import type { Descriptor, Digest, ImageConfig, Platform } from '../oci/types.js';
import { commitImage } from '../store/commit.js';
import { gc } from '../store/gc.js';
import { keepImage, tagImage } from '../store/images.js';
import { forgetVariantSource, compressImage } from '../store/variants.js';
import { parseManifestOrIndex } from '../oci/manifest.js';
import type { ContentStore } from '../store/store.js';
import { applyChanges } from './changes.js';

export interface ImportOptions extends OpOptions {
  /** Dockerfile instructions applied to the config (`CMD ["sh"]`, `ENV A=b`, ...). */
  changes?: readonly string[];
  platform?: Platform;
  /** History comment (docker's --message). */
  message?: string;
  /** Fixed creation time (default now). */
  created?: Date;
  /** What to call the input in messages. */
  what?: string;
  /** Store a plain tarball's layer compressed (gzip or zstd); compressed input is kept as it is. */
  compress?: 'gzip' | 'zstd';
  /** gzip 1..9, zstd 1..19. */
  compressionLevel?: number;
}

export interface ImportResult {
  name?: string;
  root: Descriptor;
  config: Descriptor;
  layer: Descriptor;
  diffId: Digest;
}

/** Writes every chunk to `side` as well (honouring its backpressure). */
class Tee extends Transform {
  constructor(private readonly side: Writable) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.side.destroyed) return cb(null, chunk);
    if (this.side.write(chunk)) return cb(null, chunk);
    const go = () => {
      this.side.off('drain', go);
      this.side.off('close', go);
      cb(null, chunk);
    };
    this.side.on('drain', go);
    this.side.on('close', go);
  }
  override _flush(cb: TransformCallback): void {
    this.side.end();
    cb();
  }
}


function compressionMediaType(c: string): string {
  return c === 'gzip' ? MediaType.OCI_LAYER_GZIP : c === 'zstd' ? MediaType.OCI_LAYER_ZSTD : MediaType.OCI_LAYER;
}

/** Import a rootfs tarball (`{path}` or `{stream}`) as a one-layer image named `name` (optional). */
export async function importRootfs(store: ContentStore, input: { path: string } | { stream: Readable }, name: string | undefined, opts: ImportOptions = {}): Promise<ImportResult> {
  const what = opts.what ?? ('path' in input ? input.path : 'standard input');
  const fullName = name ? parseReference(name) : undefined; // validate before reading anything
  if (fullName?.digest && !fullName.tag) throw new BerthError('INVALID_ARGUMENT', `cannot name an imported image with a digest (${name})`, { hint: 'give NAME[:TAG]' });
  const base = applyChanges({}, opts.changes ?? []); // validate the changes early too
  const platform = normalizePlatform(opts.platform ?? hostPlatform());
  let raw: Readable;
  let total = 0; // unknown for a stream
  if ('path' in input) {
    const st = await stat(input.path).catch((e) => {
      throw fromSystemError(e, `import ${input.path}`);
    });
    if (!st.isFile()) throw new BerthError('INVALID_ARGUMENT', `${input.path} is not a regular file`, { hint: 'give a tarball of a root filesystem, or - for standard input' });
    total = st.size;
    raw = createReadStream(input.path, { highWaterMark: 1 << 20 });
  } else raw = input.stream;

  const { result, drop } = await store.withLease(async () => {
    const { compression, stream } = await detectCompression(raw);
    const w = await store.ingest({ resume: false });
    const side = compression === 'none' ? new PassThrough({ highWaterMark: 1 << 20 }) : decompressStream(compression, what);
    const diff = compression === 'none' ? undefined : new DigestStream();
    const checkTar = readTarEntries(diff ? side.pipe(diff) : side, async (_h, body) => {
      body.resume();
    }, { what, ...(opts.signal ? { signal: opts.signal } : {}) });
    const progress = new CountingStream({ every: 4 << 20, ...(opts.onProgress ? { onBytes: (n: number) => opts.onProgress!({ type: 'blob-progress', digest: 'layer', done: n, size: total }) } : {}) });
    opts.onProgress?.({ type: 'blob-start', digest: 'layer', size: total, mediaType: compressionMediaType(compression) });
    let committed: { digest: Digest; size: number };
    try {
      const write = pipeline(stream, progress, new Tee(side as Writable), w.writable(), opts.signal ? { signal: opts.signal } : {});
      const results = await Promise.allSettled([write, checkTar]);
      const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      if (failed) {
        // The tar check's error names the real problem (not a tar, truncated) before a write error.
        const tarFail = results[1].status === 'rejected' ? results[1].reason : undefined;
        throw tarFail ?? failed.reason;
      }
      committed = await w.commit({ what: `layer from ${what}` });
    } catch (e) {
      await w.close(false);
      if (e instanceof BerthError) throw e;
      throw fromSystemError(e, `importing ${what}`);
    }
    const diffId = diff ? diff.digest() : committed.digest;
    opts.onProgress?.({ type: 'blob-done', digest: 'layer', size: committed.size });
    const layer: Descriptor = {
      mediaType: compressionMediaType(compression),
      digest: committed.digest,
      size: committed.size,
    };
    const created = (opts.created ?? new Date()).toISOString();
    const config: ImageConfig = {
      created,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: base,
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created, created_by: 'berth import', comment: opts.message ?? `Imported from ${'path' in input ? input.path : '-'}` }],
    };
    // The one image-assembly path; the name (or an untagged entry) comes last, after --compress.
    const img = await commitImage(store, { config, layers: [layer], keep: false, ...(opts.signal ? { signal: opts.signal } : {}) });
    let root: Descriptor = img.manifest;
    let stored = layer;
    if (opts.compress && compression === 'none') {
      // The plain layer and manifest make way for their compressed variants (same config).
      const plain = root;
      const c = await compressImage(store, plain, {
        format: opts.compress,
        ...(opts.compressionLevel !== undefined ? { level: opts.compressionLevel } : {}),
        compressor: (f, level) => compressStream(f, level),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      root = c.root;
      const cm = parseManifestOrIndex(await store.fetchBytes(root), root);
      if (cm.kind === 'manifest') stored = cm.manifest.layers[0]!;
      await forgetVariantSource(store, plain, layer);
    }
    const result: ImportResult = { root, config: img.config, layer: stored, diffId };
    if (name) result.name = await tagImage(store, name, root);
    else await keepImage(store, root); // an untagged image, as docker keeps it
    return { result, drop: stored !== layer ? [layer.digest, img.manifest.digest] : [] };
  });
  // The plain layer and manifest of an `import --compress` go now (outside the lease that held them).
  if (drop.length) await gc(store, { only: new Set(drop) });
  return result;
}
