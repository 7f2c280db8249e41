/**
 * diff_ids of compressed layers: the sha256 of the decompressed bytes. `DiffHasher` is fed the
 * compressed bytes as they flow into the ingest (a tee: one read of the archive); its failures
 * (corrupt data, a decompression bomb) are recorded, not thrown, because a member nothing
 * selected needs must not fail a load.
 */
import { createHash } from 'node:crypto';
import type { Duplex, Readable, Transform } from 'node:stream';
import { decompressStream } from '../archive/compress.js';
import { BerthError } from '../errors.js';
import type { Compression } from '../oci/mediatype.js';
import type { Digest } from '../oci/types.js';

export type DiffIdResult = { diffId: Digest; size: number } | { error: BerthError };

export class DiffHasher {
  readonly #hash = createHash('sha256');
  readonly #d: Duplex | Transform;
  readonly #done: Promise<void>;
  #n = 0;
  #error: BerthError | undefined;

  constructor(
    readonly compression: Exclude<Compression, 'none'>,
    private readonly cap: number,
    private readonly what: string,
  ) {
    this.#d = decompressStream(compression, what);
    this.#done = new Promise<void>((resolve) => {
      this.#d.on('data', (c: Buffer) => {
        if (this.#error) return;
        this.#n += c.length;
        if (this.#n > this.cap) {
          this.#fail(new BerthError('INVALID_ARGUMENT', `${this.what}: decompresses to more than ${this.cap} bytes, the limit per layer (decompression bomb?)`, {
            hint: 'raise BERTH_MAX_LAYER_BYTES if this layer is genuine',
          }));
          return;
        }
        this.#hash.update(c);
      });
      this.#d.once('end', resolve);
      this.#d.once('close', resolve);
      this.#d.once('error', (e: Error) => {
        this.#fail(e);
        resolve();
      });
    });
  }

  #fail(e: unknown): void {
    if (!this.#error) {
      if (e instanceof BerthError && (e.code !== 'INVALID_ARGUMENT' || e.message.includes('decompression bomb'))) this.#error = e;
      else {
        // zlib: "unexpected end of file"; zstd: "<what>: /*stdin*\ : Read error (39) : premature end".
        const msg = ((e as Error)?.message ?? String(e)).replace(this.what + ': ', '').replace(/^\/\*stdin\*\\?\s*:\s*/, '');
        this.#error = new BerthError('INVALID_ARGUMENT', `${this.what}: corrupt ${this.compression} data (${msg})`, { cause: e, hint: 'the archive is corrupt' });
      }
    }
    this.#d.destroy();
  }

  /** Feed compressed bytes; the promise (when any) is backpressure. */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.#error || this.#d.destroyed) return undefined;
    if (this.#d.write(chunk)) return undefined;
    return Promise.race([new Promise<void>((r) => this.#d.once('drain', r)), this.#done]);
  }

  /** No more input: the diff_id (or why there is none). */
  async end(): Promise<DiffIdResult> {
    if (!this.#error && !this.#d.destroyed) this.#d.end();
    await this.#done;
    if (this.#error) return { error: this.#error };
    if (!this.#d.readableEnded) return { error: new BerthError('INVALID_ARGUMENT', `${this.what}: truncated ${this.compression} data`, { hint: 'the archive is corrupt' }) };
    return { diffId: `sha256:${this.#hash.digest('hex')}` as Digest, size: this.#n };
  }

  /** Give up (the pass failed). */
  abort(): void {
    this.#error ??= new BerthError('ABORTED', `${this.what}: aborted`);
    this.#d.destroy();
  }
}

/** Decompress and hash a whole stream (store blobs, files of a layout directory, small members). */
export async function diffIdOfStream(input: Readable, compression: Exclude<Compression, 'none'>, cap: number, what: string): Promise<DiffIdResult> {
  const h = new DiffHasher(compression, cap, what);
  try {
    for await (const c of input) {
      const p = h.write(c as Buffer);
      if (p) await p;
    }
  } catch (e) {
    h.abort();
    return { error: e instanceof BerthError ? e : new BerthError('INVALID_ARGUMENT', `${what}: ${(e as Error).message}`, { cause: e }) };
  }
  return h.end();
}
