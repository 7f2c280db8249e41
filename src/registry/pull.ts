import { setMaxListeners } from 'node:events';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../errors.js';
import type { ContentTarget, OpOptions } from '../oci/content.js';
import { copy } from '../oci/copy.js';
import { formatReference, looksLikeDigest, parseReference } from '../oci/reference.js';
import type { Descriptor, Digest, Platform } from '../oci/types.js';
import { annotateName, tagImage } from '../store/images.js';
import type { ContentStore, IngestWriter } from '../store/store.js';
import { openTransport, type RegistryOptions } from './client.js';
import { errorCode } from './http.js';
import { Limiter } from './limit.js';
import { Repository } from './registry.js';

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

const NETWORK_BODY_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_ABORTED', 'UND_ERR_CLOSED', 'ECONNABORTED']);

function isBodyNetworkError(e: unknown): boolean {
  if (e instanceof BerthError) return e.code === 'UNAVAILABLE';
  const c = errorCode(e);
  return (c !== undefined && NETWORK_BODY_ERRORS.has(c)) || (e as Error)?.message === 'terminated';
}

/**
 * The store as a pull target: blobs go into resumable ingests keyed by digest. Bytes an earlier
 * run (or an earlier attempt) left are continued with a Range request; only a 206 whose
 * Content-Range starts at that offset is spliced, anything else restarts the blob. Nothing is
 * visible before size and digest are checked.
 */
export class ResumingStoreTarget implements ContentTarget {
  readonly store: ContentStore;
  readonly repo: Repository;
  /** Bytes received for blobs. */
  bytes = 0;
  retries: number;
  /** Blob commits (fsync + rename) still running; see `flush()`. */
  readonly #pending = new Set<Promise<void>>();
  #failed: unknown;
  /**
   * At most two commits at once: an fsync holds one of libuv's four threadpool threads for its
   * whole duration, and the downloads still running need the others for their writes.
   */
  readonly #commits = new Limiter(2);
  /** Bodies streaming at once (the walk runs more slots: see `pull()`). */
  readonly #bodies: Limiter;

  constructor(store: ContentStore, repo: Repository, opts: { retries?: number; transfers?: number } = {}) {
    this.store = store;
    this.repo = repo;
    this.retries = opts.retries ?? 5;
    this.#bodies = new Limiter(opts.transfers ?? Infinity);
  }

  /**
   * Wait for every blob commit started by `write()`: after this, each blob written is verified,
   * durable and visible, or the first failure is thrown. Writing a document (a manifest or
   * index: the parent of blobs) flushes first, so no parent is ever visible before its children.
   */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    if (this.#failed !== undefined) throw this.#failed;
  }

  /**
   * Commit in the background: the download slot moves on to the next blob while this one is
   * fsynced and renamed (on a slow disk the fsync is as long as the download).
   */
  #commitLater(w: IngestWriter, expect: { digest: Digest; size: number; what: string }): void {
    const p: Promise<void> = this.#commits.run(() => w.commit(expect)).then(
      () => {
        this.#pending.delete(p);
      },
      (e: unknown) => {
        this.#pending.delete(p);
        this.#failed ??= e;
      },
    );
    this.#pending.add(p);
  }

  exists(desc: Descriptor): Promise<boolean> {
    return this.store.exists(desc);
  }

  /** GET the rest of a blob into `ing.w` (replaced by a fresh writer when a 200 restarts it). */
  async #download(desc: Descriptor, ing: { w: IngestWriter }, what: string, opts: OpOptions): Promise<void> {
    const { start, body } = await this.repo.openBlob(desc, ing.w.offset, opts);
    if (start !== ing.w.offset) {
      // The registry sent the whole blob (200): start that blob over.
      await ing.w.close(false);
      ing.w = await this.store.ingest({ expected: desc.digest });
      if (ing.w.offset !== 0) {
        await ing.w.close(false);
        ing.w = await this.store.ingest({ expected: desc.digest, resume: false });
      }
    }
    let done = start;
    let last = 0;
    // Counted with a listener rather than a Transform: one stream hop less per chunk.
    body.on('data', (chunk: Buffer) => {
      done += chunk.length;
      this.bytes += chunk.length;
      const now = Date.now();
      if (opts.onProgress && (now - last > 100 || done === desc.size)) {
        last = now;
        opts.onProgress({ type: 'blob-progress', digest: desc.digest, done, size: desc.size });
      }
    });
    await pipeline(body, ing.w.writable({ size: desc.size, what }), opts.signal ? { signal: opts.signal } : {});
  }

  async write(desc: Descriptor, content: Buffer | (() => Promise<Readable>), opts: OpOptions = {}): Promise<void> {
    if (this.#failed !== undefined) throw this.#failed;
    if (Buffer.isBuffer(content)) {
      await this.flush();
      return this.store.write(desc, content, opts);
    }
    const what = `blob ${desc.digest} from ${this.repo.domain}/${this.repo.path}`;
    for (let attempt = 0; ; attempt++) {
      opts.signal?.throwIfAborted();
      const ing = { w: await this.store.ingest({ expected: desc.digest }) };
      try {
        if (ing.w.offset > desc.size) {
          await ing.w.close(false);
          ing.w = await this.store.ingest({ expected: desc.digest });
        }
        if (ing.w.offset < desc.size) {
          // The slot is taken before the GET: a response never waits unread (body timeouts).
          await this.#bodies.run(() => this.#download(desc, ing, what, opts));
        }
        this.#commitLater(ing.w, { digest: desc.digest, size: desc.size, what });
        return;
      } catch (e) {
        await ing.w.close(); // a resumable ingest keeps its bytes for the next attempt or run
        if (opts.signal?.aborted) throw new BerthError('ABORTED', `pulling ${what}: aborted`, { cause: e });
        if (isBodyNetworkError(e) && attempt < this.retries) {
          const wait = Math.min(5000, 200 * 2 ** attempt * (0.5 + Math.random()));
          opts.onProgress?.({ type: 'message', text: `${desc.digest.slice(7, 19)}: ${e instanceof BerthError ? e.message : errorCode(e) ?? 'connection lost'}; resuming in ${Math.round(wait)} ms` });
          await new Promise((r) => setTimeout(r, wait));
          continue;
        }
        if (e instanceof BerthError) throw e;
        throw new BerthError('UNAVAILABLE', `pulling ${what}: ${errorCode(e) ?? (e as Error).message}`, { cause: e, hint: 'run the pull again: it continues where it stopped' });
      }
    }
  }
}

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
      let name: string;
      if (ref.tag !== undefined) {
        name = await tagImage(store, formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag }), root);
      } else {
        name = formatReference({ domain: ref.domain, path: ref.path, digest: root.digest });
        const entry = annotateName(root, name);
        await store.updateIndex((ms) => {
          const i = ms.findIndex((m) => m.annotations?.['io.containerd.image.name'] === name);
          if (i === -1) ms.push(entry);
          else ms[i] = entry;
        });
      }
      return { name, root, copied: r.copied.length, existing: r.existing.length, bytes: target.bytes };
    });
  } finally {
    await done();
  }
}
