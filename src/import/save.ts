/**
 * `save`: write images from the store as a docker-save archive (the Docker >= 25 dual format:
 * an OCI layout plus manifest.json and repositories) or an oci-archive. Byte-for-byte
 * reproducible: blobs sorted by digest, fixed mtimes and owners, stored blobs as they are.
 */
import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { compressStream } from '../archive/compress.js';
import { TarWriter } from '../archive/tar.js';
import { BerthError, fromSystemError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import { canonicalJson, digestHex, CountingStream } from '../oci/digest.js';
import { isIndex, MediaType } from '../oci/mediatype.js';
import { familiarName, familiarString, looksLikeDigest, parseReference } from '../oci/reference.js';
import type { Descriptor, Digest, Platform } from '../oci/types.js';
import { Annotation } from '../oci/types.js';
import { walk } from '../oci/walk.js';
import { findImage, viewImage } from '../store/images.js';
import type { ContentStore } from '../store/store.js';
import { compressImage } from '../store/variants.js';

export type SaveFormat = 'docker' | 'oci';

export interface SaveOptions extends OpOptions {
  format?: SaveFormat;
  /** Save only this platform's manifest of multi-platform images (the root becomes it). */
  platform?: Platform;
  /**
   * Compress uncompressed layers (gzip or zstd) in the archive; the compressed blobs are kept in
   * the store (as push keeps them) so the next save or push reuses them. Configs are unchanged.
   */
  compress?: 'gzip' | 'zstd';
  /** gzip 1..9, zstd 1..19. */
  compressionLevel?: number;
}

export interface SaveResult {
  images: { name?: string; root: Descriptor }[];
  blobs: number;
  bytes: number;
}

interface Entry {
  name?: string;
  root: Descriptor;
  /** The one manifest manifest.json describes (docker format). */
  manifest?: { config: Digest; layers: Digest[] };
}

/** Resolve the images to save and the blobs they need, sorted by digest. */
async function plan(store: ContentStore, inputs: readonly string[], opts: SaveOptions): Promise<{ entries: Entry[]; blobs: Descriptor[] }> {
  if (inputs.length === 0) throw new BerthError('INVALID_ARGUMENT', 'give at least one image to save');
  const entries: Entry[] = [];
  const blobs = new Map<string, Descriptor>();
  for (const input of inputs) {
    const found = await findImage(store, input);
    let root = found.desc;
    if (!root.mediaType) {
      const v = await viewImage(store, root);
      root = v.manifestDesc;
    }
    if (opts.platform && isIndex(root.mediaType)) {
      const v = await viewImage(store, root, opts.platform);
      root = { mediaType: v.manifestDesc.mediaType, digest: v.manifestDesc.digest, size: v.manifestDesc.size };
    }
    const { annotations: _a, platform: _p, ...plain } = root;
    root = plain;
    if (opts.compress) {
      const c = await compressImage(store, root, {
        format: opts.compress,
        ...(opts.compressionLevel !== undefined ? { level: opts.compressionLevel } : {}),
        compressor: (f, level) => compressStream(f, level),
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      });
      const { annotations: _a2, platform: _p2, ...cplain } = c.root;
      root = cplain;
    }
    const graph = await walk(store, root, { allPlatforms: true, tolerateMissing: true, ...(opts.signal ? { signal: opts.signal } : {}) });
    for (const n of graph.nodes) if (!blobs.has(n.desc.digest)) blobs.set(n.desc.digest, n.desc);
    let manifest: Entry['manifest'];
    if (opts.format !== 'oci') {
      try {
        const v = await viewImage(store, root, opts.platform);
        manifest = { config: v.configDesc.digest, layers: v.manifest.layers.map((l) => l.digest) };
      } catch (e) {
        if (!(e instanceof BerthError && e.code === 'NOT_FOUND')) throw e;
      }
    }
    const entry: Entry = { root };
    if (found.record && !looksLikeDigest(input)) entry.name = found.record.name;
    if (manifest) entry.manifest = manifest;
    entries.push(entry);
  }
  const sorted = [...blobs.values()].sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  return { entries, blobs: sorted };
}


/** Write the archive of `inputs` (names, ids or digests) to `sink`. */
export async function saveImages(store: ContentStore, inputs: readonly string[], sink: Writable, opts: SaveOptions = {}): Promise<SaveResult> {
  const format = opts.format ?? 'docker';
  const { entries, blobs } = await plan(store, inputs, opts);
  const tw = new TarWriter();
  const out = pipeline(tw.readable, sink, opts.signal ? { signal: opts.signal } : {});
  let bytes = 0;
  const produce = async () => {
    await tw.addDirectory('blobs');
    await tw.addDirectory('blobs/sha256');
    for (const d of blobs) {
      opts.signal?.throwIfAborted();
      opts.onProgress?.({ type: 'blob-start', digest: d.digest, size: d.size, mediaType: d.mediaType });
      const counter = new CountingStream({ every: 4 << 20, ...(opts.onProgress ? { onBytes: (n: number) => opts.onProgress!({ type: 'blob-progress', digest: d.digest, done: n, size: d.size }) } : {}) });
      const src = await store.fetch(d);
      await tw.addStream(`blobs/sha256/${digestHex(d.digest)}`, d.size, src.pipe(counter), opts.signal ? { signal: opts.signal } : {});
      bytes += d.size;
      opts.onProgress?.({ type: 'blob-done', digest: d.digest, size: d.size });
    }
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_INDEX,
      manifests: entries.map((e) => {
        if (!e.name) return e.root;
        const ref = parseReference(e.name);
        const refName = format === 'docker' ? (ref.tag ?? 'latest') : e.name;
        return { ...e.root, annotations: { [Annotation.CONTAINERD_NAME]: e.name, [Annotation.REF_NAME]: refName } };
      }),
    };
    await tw.addBytes('index.json', canonicalJson(index));
    if (format === 'docker') {
      const manifest = entries
        .filter((e) => e.manifest)
        .map((e) => ({
          Config: `blobs/sha256/${digestHex(e.manifest!.config)}`,
          RepoTags: e.name ? [familiarString(parseReference(e.name))] : [],
          Layers: e.manifest!.layers.map((l) => `blobs/sha256/${digestHex(l)}`),
        }));
      await tw.addBytes('manifest.json', canonicalJson(manifest));
    }
    await tw.addBytes('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    if (format === 'docker') {
      const repos: Record<string, Record<string, string>> = {};
      for (const e of entries) {
        if (!e.name || !e.manifest) continue;
        const ref = parseReference(e.name);
        (repos[familiarName(ref)] ??= {})[ref.tag ?? 'latest'] = digestHex(e.manifest.config);
      }
      await tw.addBytes('repositories', canonicalJson(repos));
    }
    tw.finish();
  };
  try {
    await Promise.all([produce().catch((e) => {
      tw.destroy(e);
      throw e;
    }), out]);
  } catch (e) {
    throw e instanceof BerthError ? e : fromSystemError(e, 'writing the archive');
  }
  return { images: entries.map((e) => ({ ...(e.name ? { name: e.name } : {}), root: e.root })), blobs: blobs.length, bytes };
}

/** Save into `path` atomically (temp file + rename). */
export async function saveImagesToFile(store: ContentStore, inputs: readonly string[], path: string, opts: SaveOptions = {}): Promise<SaveResult> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const r = await saveImages(store, inputs, createWriteStream(tmp), opts);
    await rename(tmp, path);
    return r;
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e instanceof BerthError ? e : fromSystemError(e, `writing ${path}`);
  }
}

