import { setMaxListeners } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { BerthError } from './errors.js';
import type { OpOptions } from './oci/content.js';
import { copy } from './oci/copy.js';
import { parseManifestOrIndex } from './oci/manifest.js';
import { isIndex, MediaType } from './oci/mediatype.js';
import { formatReference, parseReference } from './oci/reference.js';
import type { Descriptor, Digest } from './oci/types.js';
import { walk } from './oci/walk.js';
import { compressStream } from './archive/compress.js';
import { findImage, viewImage } from './store/images.js';
import { compressImage } from './store/variants.js';
import type { ContentStore } from './store/store.js';
import { openTransport, type RegistryOptions } from './registry/client.js';
import { Repository } from './registry/registry.js';

export interface PushOptions extends OpOptions, RegistryOptions {
  /** Push the whole index (default: the manifest for this host's platform only). */
  allPlatforms?: boolean;
  /** Blobs larger than this go up in PATCH chunks of this size (default 64 MiB). */
  chunkSize?: number;
  /** Blobs uploaded at once (default 4). */
  concurrency?: number;
  /** Push the local image `source` under the name `input` (default: the same name). */
  source?: string;
  /**
   * Uncompressed layers go up compressed (default gzip, as docker and podman push); 'none' sends
   * them as stored. The compressed blobs are kept in the store, so a second push reuses them.
   * Layers already compressed are sent as they are. A push by digest (`name@sha256:…`) sends that
   * exact manifest, uncompressed layers and all.
   */
  compression?: 'gzip' | 'zstd' | 'none';
  /** gzip 1..9, zstd 1..19 (default: gzip's 6, zstd's 3). */
  compressionLevel?: number;
}

export interface PushResult {
  name: string;
  /** The digest the registry holds under the name. */
  digest: Digest;
  root: Descriptor;
  copied: number;
  existing: number;
}

/** Which other repositories of `domain` (per the local store's names) hold each blob. */
async function mountCandidates(store: ContentStore, domain: string, path: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const rec of await store.listImages()) {
    let r;
    try {
      r = parseReference(rec.name);
    } catch {
      continue;
    }
    if (r.domain !== domain || r.path === path) continue;
    try {
      const g = await walk(store, rec.desc, { allPlatforms: true, tolerateMissing: true });
      for (const n of g.nodes) {
        const l = out.get(n.desc.digest) ?? [];
        if (!l.includes(r.path) && l.length < 2) l.push(r.path);
        out.set(n.desc.digest, l);
      }
    } catch {
      /* an unreadable image offers no mounts */
    }
  }
  return out;
}

/**
 * Push a local image to its registry: blobs the registry lacks (mounted from another repository
 * when possible, else uploaded), then manifests bottom-up, the root last under its tag.
 */
export async function push(store: ContentStore, input: string, opts: PushOptions = {}): Promise<PushResult> {
  // Each concurrent request and pipeline listens on the signal.
  if (opts.signal) setMaxListeners(256, opts.signal);
  const ref = parseReference(input);
  const found = await findImage(store, opts.source ?? input);
  let root = found.desc;
  if (!root.mediaType) {
    const doc = parseManifestOrIndex(await store.fetchBytes({ ...root, mediaType: MediaType.OCI_MANIFEST }), { mediaType: '' });
    root = { mediaType: doc.mediaType, digest: root.digest, size: root.size };
  }
  const { annotations: _a, ...plainRoot } = root;
  root = plainRoot;
  if (!opts.allPlatforms && isIndex(root.mediaType)) {
    const v = await viewImage(store, root);
    root = { mediaType: v.manifestDesc.mediaType, digest: v.manifestDesc.digest, size: v.manifestDesc.size };
  }
  const tag = ref.tag ?? (ref.digest ? undefined : 'latest');
  if (ref.digest && ref.digest !== root.digest) {
    throw new BerthError('INVALID_ARGUMENT', `cannot push ${input}: the local image is ${root.digest}`, { hint: 'push by tag' });
  }
  const format = opts.compression ?? 'gzip';
  if (format !== 'none' && !ref.digest) {
    const c = await compressImage(store, root, {
      format,
      ...(opts.compressionLevel !== undefined ? { level: opts.compressionLevel } : {}),
      compressor: (f, level) => compressStream(f, level),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    const { annotations: _a2, platform: _p2, ...plain } = c.root;
    root = plain;
  }
  const { transport, done } = openTransport(opts);
  try {
    const mounts = await mountCandidates(store, ref.domain, ref.path);
    const transfers = opts.concurrency ?? 4;
    const repo = new Repository(transport, ref, {
      push: true,
      ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
      rangeSource: {
        fetchRange: async (d: Descriptor, start: number, end: number): Promise<Readable> =>
          createReadStream(store.blobPath(d.digest), { start, end: end - 1, highWaterMark: 1 << 20 }),
        filePath: (d: Descriptor) => store.blobPath(d.digest),
      },
      mountFrom: (d) => mounts.get(d) ?? [],
      ...(tag ? { tagRoot: { digest: root.digest, tag } } : {}),
      transfers,
    });
    return await store.withLease(async () => {
      const r = await copy(store, repo, root, {
        ...(opts.allPlatforms ? { allPlatforms: true } : {}),
        // Twice the uploads: the HEAD and POST of the next blobs overlap the bodies in flight.
        concurrency: transfers * 2,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      });
      // The root existed already (by digest): the tag still has to point at it.
      if (tag && r.existing.some((d) => d.digest === root.digest)) await repo.putManifest(root, await store.fetchBytes(root), tag, opts);
      const name = formatReference({ domain: ref.domain, path: ref.path, ...(tag ? { tag } : { digest: root.digest }) });
      return { name, digest: root.digest, root, copied: r.copied.length, existing: r.existing.length };
    });
  } finally {
    await done();
  }
}
