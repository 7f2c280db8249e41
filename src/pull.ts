/**
 * pull = copy(registry, store) + tag. The registry is the source (resolve, blobs with Range);
 * the store's ResumingStoreTarget is the target (resumable ingests); the name is set last.
 * This room stands above both: the registry room never sees the store.
 */
import { setMaxListeners } from 'node:events';
import { BerthError } from './errors.js';
import type { OpOptions } from './oci/content.js';
import { copy } from './oci/copy.js';
import { formatReference, looksLikeDigest, parseReference } from './oci/reference.js';
import type { Descriptor, Platform } from './oci/types.js';
import { openTransport, type RegistryOptions } from './registry/client.js';
import { Repository } from './registry/registry.js';
import { tag } from './store/images.js';
import { ResumingStoreTarget } from './store/resume.js';
import type { ContentStore } from './store/store.js';

export { ResumingStoreTarget };

export interface PullOptions extends OpOptions, RegistryOptions {
  platform?: Platform;
  allPlatforms?: boolean;
  /** Blobs downloaded at once (default 4). */
  concurrency?: number;
}

export interface PullResult {
  /** Full normalised name that now points at the image. */
  name: string;
  root: Descriptor;
  /** Blobs downloaded / already present. */
  copied: number;
  existing: number;
  /** Bytes received over the network for blobs. */
  bytes: number;
}

/** Blobs downloaded at once by default (skopeo uses 6). */
export const DEFAULT_PULL_CONCURRENCY = 4;

/**
 * Pull `input` (`alpine`, `host:5000/a/b:tag`, `name@sha256:…`) into the store: resolve, walk
 * to the platform (or every platform), download missing blobs concurrently into resumable
 * ingests, write manifests bottom-up, and only then point the name at the root.
 */
export async function pull(store: ContentStore, input: string, opts: PullOptions = {}): Promise<PullResult> {
  // Each concurrent request and pipeline listens on the signal.
  if (opts.signal) setMaxListeners(256, opts.signal);
  // An image id (as docker shows it) names nothing on a registry: never ask one for it.
  if (looksLikeDigest(input)) throw new BerthError('NOT_FOUND', `no such image: ${input}`, { hint: 'an image ID names a local image only: see berth images' });
  const ref = parseReference(input);
  const { transport, done } = openTransport(opts);
  try {
    const repo = new Repository(transport, ref);
    return await store.withLease(async () => {
      const root = await repo.resolve(ref, opts);
      const transfers = opts.concurrency ?? DEFAULT_PULL_CONCURRENCY;
      const target = new ResumingStoreTarget(store, repo, { transfers });
      let r;
      try {
        r = await copy(repo, target, root, {
          ...(opts.platform ? { platform: opts.platform } : {}),
          ...(opts.allPlatforms ? { allPlatforms: true } : {}),
          // Twice the transfers: the next blobs' ingest opens and GETs overlap the bodies.
          concurrency: transfers * 2,
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        });
      } finally {
        // Even when the copy failed: no commit may still run once pull() returns or throws.
        await target.flush().catch(() => {});
      }
      await target.flush();
      // By tag: the tag; by digest only: the digest reference (containerd names it so too).
      const name = await tag(store, ref.tag !== undefined ? formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag }) : formatReference({ domain: ref.domain, path: ref.path, digest: root.digest }), root);
      return { name, root, copied: r.copied.length, existing: r.existing.length, bytes: target.bytes };
    });
  } finally {
    await done();
  }
}
