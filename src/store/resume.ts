/**
 * Resumable downloads into the store: the target of a pull. It lives with the store (partial
 * ingests are the store's business); the source is anything that can continue a blob from an
 * offset (a registry).
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError } from '../errors.js';
import type { ContentTarget, OpOptions, ResumableSource } from '../oci/content.js';
import { Limiter } from '../oci/limit.js';
import type { Descriptor, Digest } from '../oci/types.js';
import type { ContentStore, IngestWriter } from './store.js';

/**
 * The store as a pull target: blobs go into resumable ingests keyed by digest. Bytes an earlier
 * run (or an earlier attempt) left are continued with a Range request; only a 206 whose
 * Content-Range starts at that offset is spliced, anything else restarts the blob. Nothing is
 * visible before size and digest are checked.
 */
export class ResumingStoreTarget implements ContentTarget {
  readonly store: ContentStore;
  readonly source: ResumableSource;
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

  constructor(store: ContentStore, source: ResumableSource, opts: { retries?: number; transfers?: number } = {}) {
    this.store = store;
    this.source = source;
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

  #retryable(e: unknown): boolean {
    if (e instanceof BerthError) return e.code === 'UNAVAILABLE';
    return this.source.retryable?.(e) ?? false;
  }

  exists(desc: Descriptor): Promise<boolean> {
    return this.store.exists(desc);
  }

  /** GET the rest of a blob into `ing.w` (replaced by a fresh writer when a 200 restarts it). */
  async #download(desc: Descriptor, ing: { w: IngestWriter }, what: string, opts: OpOptions): Promise<void> {
    const { start, body } = await this.source.openBlob(desc, ing.w.offset, opts);
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
    const what = `blob ${desc.digest}${this.source.where ? ` from ${this.source.where}` : ''}`;
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
        if (this.#retryable(e) && attempt < this.retries) {
          const wait = Math.min(5000, 200 * 2 ** attempt * (0.5 + Math.random()));
          opts.onProgress?.({ type: 'message', text: `${desc.digest.slice(7, 19)}: ${e instanceof BerthError ? e.message : ((e as NodeJS.ErrnoException)?.code ?? 'connection lost')}; resuming in ${Math.round(wait)} ms` });
          await new Promise((r) => setTimeout(r, wait));
          continue;
        }
        if (e instanceof BerthError) throw e;
        throw new BerthError('UNAVAILABLE', `pulling ${what}: ${(e as NodeJS.ErrnoException)?.code ?? (e as Error).message}`, { cause: e, hint: 'run the pull again: it continues where it stopped' });
      }
    }
  }
}

