/**
 * `save`: write images from the store as a docker-save archive (the Docker >= 25 dual format:
 * an OCI layout plus manifest.json and repositories) or an oci-archive. Byte-for-byte
 * reproducible: blobs sorted by digest, fixed mtimes and owners, stored blobs as they are.
 */
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { compressStream } from '../archive/compress.js';
import { TarFileWriter, TarWriter } from '../archive/tar.js';
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


/** Where the archive's members go: a tar stream, or a file written in place. */
interface Members {
  dir(name: string): Promise<void>;
  bytes(name: string, data: Buffer): Promise<void>;
  blob(d: Descriptor, onBytes: (n: number) => void): Promise<void>;
}

/** The members of the archive, in order. */
async function writeMembers(m: Members, entries: Entry[], blobs: Descriptor[], format: SaveFormat, opts: SaveOptions): Promise<number> {
  let bytes = 0;
  await m.dir('blobs');
  await m.dir('blobs/sha256');
  for (const d of blobs) {
    opts.signal?.throwIfAborted();
    opts.onProgress?.({ type: 'blob-start', digest: d.digest, size: d.size, mediaType: d.mediaType });
    let last = 0;
    await m.blob(d, (n) => {
      if (opts.onProgress && n - last >= 4 << 20) {
        last = n;
        opts.onProgress({ type: 'blob-progress', digest: d.digest, done: n, size: d.size });
      }
    });
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
  await m.bytes('index.json', canonicalJson(index));
  if (format === 'docker') {
    const manifest = entries
      .filter((e) => e.manifest)
      .map((e) => ({
        Config: `blobs/sha256/${digestHex(e.manifest!.config)}`,
        RepoTags: e.name ? [familiarString(parseReference(e.name))] : [],
        Layers: e.manifest!.layers.map((l) => `blobs/sha256/${digestHex(l)}`),
      }));
    await m.bytes('manifest.json', canonicalJson(manifest));
  }
  await m.bytes('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  if (format === 'docker') {
    const repos: Record<string, Record<string, string>> = {};
    for (const e of entries) {
      if (!e.name || !e.manifest) continue;
      const ref = parseReference(e.name);
      (repos[familiarName(ref)] ??= {})[ref.tag ?? 'latest'] = digestHex(e.manifest.config);
    }
    await m.bytes('repositories', canonicalJson(repos));
  }
  return bytes;
}

function result(entries: Entry[], blobs: Descriptor[], bytes: number): SaveResult {
  return { images: entries.map((e) => ({ ...(e.name ? { name: e.name } : {}), root: e.root })), blobs: blobs.length, bytes };
}

/** Write the archive of `inputs` (names, ids or digests) to `sink`. */
export async function saveImages(store: ContentStore, inputs: readonly string[], sink: Writable, opts: SaveOptions = {}): Promise<SaveResult> {
  const format = opts.format ?? 'docker';
  const { entries, blobs } = await plan(store, inputs, opts);
  const tw = new TarWriter();
  const out = pipeline(tw.readable, sink, opts.signal ? { signal: opts.signal } : {});
  const sig = opts.signal ? { signal: opts.signal } : {};
  const members: Members = {
    dir: (name) => tw.addDirectory(name),
    bytes: (name, data) => tw.addBytes(name, data),
    blob: async (d, onBytes) => {
      const counter = new CountingStream({ every: 4 << 20, onBytes });
      await tw.addStream(`blobs/sha256/${digestHex(d.digest)}`, d.size, (await store.fetch(d)).pipe(counter), sig);
    },
  };
  let bytes = 0;
  try {
    await Promise.all([
      writeMembers(members, entries, blobs, format, opts).then(
        (n) => {
          bytes = n;
          tw.finish();
        },
        (e) => {
          tw.destroy(e);
          throw e;
        },
      ),
      out,
    ]);
  } catch (e) {
    throw e instanceof BerthError ? e : fromSystemError(e, 'writing the archive');
  }
  return result(entries, blobs, bytes);
}

/**
 * Save into `path` atomically (temp file + rename). The file is written in place (positioned
 * writes, blobs copied through two reused buffers): the same bytes as saveImages gives a stream.
 */
export async function saveImagesToFile(store: ContentStore, inputs: readonly string[], path: string, opts: SaveOptions = {}): Promise<SaveResult> {
  const format = opts.format ?? 'docker';
  const { entries, blobs } = await plan(store, inputs, opts);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'w', 0o644);
    const tw = new TarFileWriter(fh);
    const members: Members = {
      dir: (name) => tw.addDirectory(name),
      bytes: (name, data) => tw.addBytes(name, data),
      blob: async (d, onBytes) => {
        // Checked like store.fetch: present, and the size the descriptor says.
        const size = await store.blobSize(d.digest);
        if (size === undefined) throw new BerthError('NOT_FOUND', `blob ${d.digest} is not in the store`, { hint: 'pull or load the image again' });
        if (size !== d.size) throw new BerthError('DIGEST_MISMATCH', `store blob ${d.digest} has size ${size}, expected ${d.size}`, { hint: 'run berth system check' });
        const src = await open(store.blobPath(d.digest), 'r');
        try {
          await tw.addFile(`blobs/sha256/${digestHex(d.digest)}`, d.size, src, { onBytes, ...(opts.signal ? { signal: opts.signal } : {}) });
        } finally {
          await src.close();
        }
      },
    };
    const bytes = await writeMembers(members, entries, blobs, format, opts);
    await tw.finish();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
    return result(entries, blobs, bytes);
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e instanceof BerthError ? e : fromSystemError(e, `writing ${path}`);
  }
}
