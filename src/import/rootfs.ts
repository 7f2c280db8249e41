/**
 * `import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image, as
 * `docker import` does. The tarball is stored as it came (no recompression), hashed once as
 * stored; a compressed one is also decompressed once to get its diff_id and to check it is a tar.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressStream, detectCompression } from '../archive/compress.js';
import { readTarEntries } from '../archive/tar.js';
import { BerthError, fromSystemError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import { DigestStream, CountingStream } from '../oci/digest.js';
import { MediaType } from '../oci/mediatype.js';
import { hostPlatform, normalizePlatform } from '../oci/platform.js';
import { parseReference } from '../oci/reference.js';
import type { Descriptor, Digest, ImageConfig, Platform } from '../oci/types.js';
import { commitImage } from '../store/commit.js';
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


/** Import a rootfs tarball (`{path}` or `{stream}`) as a one-layer image named `name` (optional). */
export async function importRootfs(store: ContentStore, input: { path: string } | { stream: Readable }, name: string | undefined, opts: ImportOptions = {}): Promise<ImportResult> {
  const what = opts.what ?? ('path' in input ? input.path : 'standard input');
  const fullName = name ? parseReference(name) : undefined; // validate before reading anything
  if (fullName?.digest && !fullName.tag) throw new BerthError('INVALID_ARGUMENT', `cannot name an imported image with a digest (${name})`, { hint: 'give NAME[:TAG]' });
  const base = applyChanges({}, opts.changes ?? []); // validate the changes early too
  const platform = normalizePlatform(opts.platform ?? hostPlatform());
  let raw: Readable;
  if ('path' in input) {
    const st = await stat(input.path).catch((e) => {
      throw fromSystemError(e, `import ${input.path}`);
    });
    if (!st.isFile()) throw new BerthError('INVALID_ARGUMENT', `${input.path} is not a regular file`, { hint: 'give a tarball of a root filesystem, or - for standard input' });
    raw = createReadStream(input.path, { highWaterMark: 1 << 20 });
  } else raw = input.stream;

  return store.withLease(async () => {
    const { compression, stream } = await detectCompression(raw);
    const w = await store.ingest({ resume: false });
    const side = compression === 'none' ? new PassThrough({ highWaterMark: 1 << 20 }) : decompressStream(compression, what);
    const diff = compression === 'none' ? undefined : new DigestStream();
    const checkTar = readTarEntries(diff ? side.pipe(diff) : side, async (_h, body) => {
      body.resume();
    }, { what, ...(opts.signal ? { signal: opts.signal } : {}) });
    const progress = new CountingStream({ every: 4 << 20, ...(opts.onProgress ? { onBytes: (n: number) => opts.onProgress!({ type: 'blob-progress', digest: 'layer', done: n, size: 0 }) } : {}) });
    opts.onProgress?.({ type: 'blob-start', digest: 'layer', size: 0, mediaType: '' });
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
      mediaType: compression === 'gzip' ? MediaType.OCI_LAYER_GZIP : compression === 'zstd' ? MediaType.OCI_LAYER_ZSTD : MediaType.OCI_LAYER,
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
    const img = await commitImage(store, { config, layers: [layer], ...(name ? { name } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    const result: ImportResult = { root: img.manifest, config: img.config, layer, diffId };
    if (img.names[0] !== undefined) result.name = img.names[0];
    return result;
  });
}
