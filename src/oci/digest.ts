import type { Hash } from 'node:crypto';
import { createRequire } from 'node:module';

let cryptoModule: typeof import('node:crypto') | undefined;
/** node:crypto, loaded on first use: a command that hashes nothing (a cached listing) never pays for it. */
/** `n` random bytes in hex (node:crypto loaded on first use, without its ESM facade). */
export function randomHex(n: number): string {
  return nodeCrypto().randomBytes(n).toString('hex');
}

export function nodeCrypto(): typeof import('node:crypto') {
  return (cryptoModule ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto'));
}
import { Transform, type TransformCallback } from 'node:stream';
import { BerthError } from '../errors.js';
import type { Digest } from './types.js';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

/** Validate a digest string before it touches a path or a URL. */
export function parseDigest(s: unknown, where = 'digest'): Digest {
  if (isDigest(s)) return s;
  const shown = typeof s === 'string' ? JSON.stringify(s.length > 80 ? s.slice(0, 80) + '…' : s) : String(s);
  if (typeof s === 'string' && /^[a-z0-9]+([+._-][a-z0-9]+)*:/.test(s) && !s.startsWith('sha256:')) {
    throw new BerthError('UNSUPPORTED', `${where}: unsupported digest algorithm in ${shown}`, {
      hint: 'berth supports sha256 digests only',
    });
  }
  throw new BerthError('INVALID_ARGUMENT', `${where}: invalid digest ${shown}`, {
    hint: 'expected sha256: followed by 64 lowercase hex characters',
  });
}

/** Hex part of a validated digest. */
export function digestHex(d: Digest): string {
  return d.slice(7);
}

export function sha256(data: Uint8Array | string): Digest {
  return `sha256:${nodeCrypto().createHash('sha256').update(data).digest('hex')}`;
}

/** Canonical bytes of a JSON document as berth writes it (no whitespace). */
export function canonicalJson(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v), 'utf8');
}

export interface CountOptions {
  /** Called with the running total, at most once per `every` bytes (default: every chunk). */
  onBytes?: (total: number) => void;
  every?: number;
  /** Fail the stream past this many bytes, with `overflow()`'s error. */
  max?: number;
  overflow?: (max: number) => Error;
}

/**
 * THE counting pass-through: counts the bytes, reports progress, enforces a cap. (DigestStream
 * adds hashing; every byte counter, progress meter and size cap in berth is one of these.)
 */
export class CountingStream extends Transform {
  #size = 0;
  #last = 0;
  readonly #o: CountOptions;

  constructor(opts: CountOptions = {}) {
    super({ highWaterMark: 1 << 20 });
    this.#o = opts;
  }

  /** Count bytes that did not flow through (seeding a resumed ingest). */
  protected addCount(n: number): void {
    this.#size += n;
  }

  /** Called for every chunk that passes (after counting and the cap). */
  protected observe(_chunk: Buffer): void {}

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#size += chunk.length;
    const o = this.#o;
    if (o.max !== undefined && this.#size > o.max) {
      cb(o.overflow?.(o.max) ?? new Error(`more than ${o.max} bytes`));
      return;
    }
    this.observe(chunk);
    if (o.onBytes && this.#size - this.#last >= (o.every ?? 0)) {
      this.#last = this.#size;
      o.onBytes(this.#size);
    }
    cb(null, chunk);
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.#size;
  }
}

/** A pass-through stream that hashes what flows (sha256) and counts the bytes. */
export class DigestStream extends CountingStream {
  readonly #hash: Hash = nodeCrypto().createHash('sha256');
  #digest: Digest | undefined;

  /** Seed with bytes already written (resuming an ingest): the hash state is fed them first. */
  seed(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.addCount(chunk.length);
  }

  protected override observe(chunk: Buffer): void {
    this.#hash.update(chunk);
  }

  /** The digest; valid once the stream has ended. */
  digest(): Digest {
    this.#digest ??= `sha256:${this.#hash.digest('hex')}`;
    return this.#digest;
  }
}

export interface VerifyExpectation {
  digest: Digest;
  size?: number;
  /** What is being verified, for the error message. */
  what?: string;
}

/**
 * A pass-through stream that fails when more than `size` bytes flow, and at the end when the
 * size or the digest differ from what was expected.
 */
export class VerifyingStream extends Transform {
  readonly #hash: Hash = nodeCrypto().createHash('sha256');
  #size = 0;
  readonly #expect: VerifyExpectation;

  constructor(expect: VerifyExpectation, initial?: { hashed: Hash; size: number }) {
    super();
    this.#expect = expect;
    if (initial) {
      this.#hash = initial.hashed;
      this.#size = initial.size;
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#size += chunk.length;
    const { size, what = this.#expect.digest } = this.#expect;
    if (size !== undefined && this.#size > size) {
      cb(new BerthError('DIGEST_MISMATCH', `${what}: more bytes than the declared size ${size}`));
      return;
    }
    this.#hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const { size, digest, what = digest } = this.#expect;
    if (size !== undefined && this.#size !== size) {
      cb(new BerthError('DIGEST_MISMATCH', `${what}: size ${this.#size} does not match the declared size ${size}`));
      return;
    }
    const got = `sha256:${this.#hash.digest('hex')}`;
    if (got !== digest) {
      cb(new BerthError('DIGEST_MISMATCH', `${what}: content digest ${got} does not match`));
      return;
    }
    cb();
  }
}

/** Verify bytes held in memory (manifests, configs). */
export function verifyBytes(data: Uint8Array, expect: VerifyExpectation): void {
  const what = expect.what ?? expect.digest;
  if (expect.size !== undefined && data.length !== expect.size) {
    throw new BerthError('DIGEST_MISMATCH', `${what}: size ${data.length} does not match the declared size ${expect.size}`);
  }
  const got = sha256(data);
  if (got !== expect.digest) throw new BerthError('DIGEST_MISMATCH', `${what}: content digest ${got} does not match`);
}
