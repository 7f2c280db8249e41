import type { Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Transform, type TransformCallback } from 'node:stream';
import { BerthError } from '../errors.js';
import type { Digest } from './types.js';

let cryptoModule: typeof import('node:crypto') | undefined;
/** node:crypto, loaded on first use: a command that hashes nothing (a cached listing) never pays for it. */
export function nodeCrypto(): typeof import('node:crypto') {
  return (cryptoModule ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto'));
}

/**
 * `n` random bytes in hex, from the kernel's generator (/dev/urandom, what node:crypto seeds
 * from): a warm `run` names its container and temp files without loading node:crypto.
 */
export function randomHex(n: number): string {
  const b = Buffer.allocUnsafe(n);
  try {
    const fd = openSync('/dev/urandom', 'r');
    try {
      let got = 0;
      while (got < n) {
        const k = readSync(fd, b, got, n - got, null);
        if (k <= 0) throw new Error('short read');
        got += k;
      }
    } finally {
      closeSync(fd);
    }
  } catch {
    return nodeCrypto().randomBytes(n).toString('hex');
  }
  return b.toString('hex');
}
const K256 = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/**
 * SHA-256 of a short text, in hex. Up to 4 KiB it is computed here (plain FIPS 180-4): a warm
 * `run` names snapshot directories by the hash of their keys, and loading node:crypto for a few
 * dozen bytes cost more than the rest of its snapshot work. Longer input goes to node:crypto.
 */
export function sha256Text(text: string): string {
  const msg = Buffer.from(text, 'utf8');
  if (msg.length > 4096) return nodeCrypto().createHash('sha256').update(msg).digest('hex');
  // Written for V8's interpreter (a run hashes a few keys, so this code never gets hot): no
  // helper calls, no destructuring, rotations inline.
  const len = msg.length;
  const blocks = Math.ceil((len + 9) / 64);
  const buf = new Uint8Array(blocks * 64);
  buf.set(msg);
  buf[len] = 0x80;
  const bits = len * 8;
  const hi = Math.floor(bits / 0x100000000);
  const lo = bits >>> 0;
  const end = buf.length;
  buf[end - 8] = hi >>> 24; buf[end - 7] = (hi >>> 16) & 0xff; buf[end - 6] = (hi >>> 8) & 0xff; buf[end - 5] = hi & 0xff;
  buf[end - 4] = lo >>> 24; buf[end - 3] = (lo >>> 16) & 0xff; buf[end - 2] = (lo >>> 8) & 0xff; buf[end - 1] = lo & 0xff;
  let h0 = 0x6a09e667, h1 = 0xbb67ae85, h2 = 0x3c6ef372, h3 = 0xa54ff53a, h4 = 0x510e527f, h5 = 0x9b05688c, h6 = 0x1f83d9ab, h7 = 0x5be0cd19;
  const w = new Int32Array(64);
  for (let o = 0; o < end; o += 64) {
    for (let i = 0; i < 16; i++) {
      const j = o + i * 4;
      w[i] = (buf[j]! << 24) | (buf[j + 1]! << 16) | (buf[j + 2]! << 8) | buf[j + 3]!;
    }
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15]!;
      const y = w[i - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
    }
    let a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K256[i]! + w[i]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0; h5 = (h5 + f) | 0; h6 = (h6 + g) | 0; h7 = (h7 + h) | 0;
  }
  let out = '';
  for (const x of [h0, h1, h2, h3, h4, h5, h6, h7]) out += (x >>> 0).toString(16).padStart(8, '0');
  return out;
}

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
