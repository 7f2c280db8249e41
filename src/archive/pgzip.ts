/**
 * gzip on every core, as one gzip member (pigz's and pgzip's layout).
 *
 * The input is cut into fixed 1 MiB segments. Each segment is deflated on the libuv thread pool
 * as raw deflate with the 32 KiB of input before it as the dictionary, ended by a sync flush (so
 * it stops on a byte boundary and the next segment's blocks follow it directly). The segments
 * are written in order behind one gzip header; an empty final block, the CRC-32 (combined on the
 * main thread as segments pass) and the length close the member. A decoder sees one ordinary
 * deflate stream.
 *
 * Incompressible segments (already compressed or random data) are not run through deflate: a
 * level-1 deflate of a 50 KiB sample of the segment decides (see `incompressible`), and when the
 * sample does not shrink by 3% the segment is written as stored blocks, the input bytes
 * themselves behind 5-byte block headers. zlib gets through such data at about 50 MB/s a core at
 * any level, to gain nothing; stored blocks cost no more than the copy.
 *
 * Everything is a function of the input bytes alone (fixed segment size, fixed samples, fixed
 * dictionary), so the same input always gives the same output however it is chunked: layers
 * stay reproducible.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { crc32, deflateRaw, constants as zc, type ZlibOptions } from 'node:zlib';
import { BerthError } from '../errors.js';

/** Segment size: the unit of parallel work and of the stored/deflate decision. */
export const SEGMENT = 1 << 20;
const WINDOW = 32 << 10;
const SAMPLES = 8;
const SAMPLE = 2048;
const RUN = WINDOW + 2048;
/** Stored when the level-1 samples come out above this share of their size. */
const STORED_ABOVE = 0.97;
const STORED_MAX = 0xffff;

function deflate(input: Buffer, opts: ZlibOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => deflateRaw(input, opts, (e, out) => (e ? reject(e) : resolve(out))));
}

/**
 * Whether deflate would gain (almost) nothing on `seg`: a level-1 deflate of a sample, eight
 * 2 KiB pieces spread over the segment (a mixed segment shows as mixed) and one run longer than
 * deflate's 32 KiB window from its middle (repeats up to that distance are found, as deflate
 * would find them).
 */
async function incompressible(seg: Buffer): Promise<boolean> {
  let sample = seg;
  if (seg.length > SAMPLES * SAMPLE + RUN) {
    sample = Buffer.allocUnsafe(SAMPLES * SAMPLE + RUN);
    const step = Math.floor((seg.length - SAMPLE) / (SAMPLES - 1));
    for (let i = 0; i < SAMPLES; i++) seg.copy(sample, i * SAMPLE, i * step, i * step + SAMPLE);
    const mid = (seg.length - RUN) >> 1;
    seg.copy(sample, SAMPLES * SAMPLE, mid, mid + RUN);
  }
  if (sample.length < 64) return false;
  const out = await deflate(sample, { level: 1, chunkSize: sample.length + 1024 });
  return out.length > sample.length * STORED_ABOVE;
}

/** `seg` as non-final stored blocks: the bytes themselves (not copied) behind block headers. */
function stored(seg: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < seg.length; off += STORED_MAX) {
    const n = Math.min(STORED_MAX, seg.length - off);
    out.push(Buffer.from([0, n & 0xff, n >> 8, ~n & 0xff, (~n >> 8) & 0xff]), seg.subarray(off, off + n));
  }
  return out;
}

/** One segment's deflate blocks (ending on a byte boundary, not final). */
async function segment(seg: Buffer, dict: Buffer | undefined, level: number): Promise<Buffer[]> {
  if (level === 0 || (await incompressible(seg))) return stored(seg);
  const opts: ZlibOptions = { level, finishFlush: zc.Z_SYNC_FLUSH, chunkSize: seg.length + (seg.length >> 8) + 1024 };
  if (dict) opts.dictionary = dict;
  return [await deflate(seg, opts)];
}

/** A gzip stream compressed a segment per core; see the module comment. */
export class ParallelGzip extends Transform {
  readonly #level: number;
  readonly #parallel: number;
  /** The segment being filled (chunks not yet SEGMENT bytes together). */
  #parts: Buffer[] = [];
  #partLen = 0;
  /** The last WINDOW bytes before the next segment: its dictionary. */
  #tail: Buffer | undefined;
  #crc = 0;
  #size = 0;
  #started = false;
  readonly #inflight: Promise<Buffer[]>[] = [];

  /** `level` 0..9 (-1: zlib's default, 6); at most `parallel` segments in flight. */
  constructor(level: number, parallel: number) {
    super({ highWaterMark: 1 << 20 });
    if (!Number.isInteger(level) || level < -1 || level > 9) throw new BerthError('INVALID_ARGUMENT', `gzip level ${level} is not one of 0..9`);
    this.#level = level === -1 ? 6 : level;
    this.#parallel = Math.max(1, parallel);
  }

  #header(): void {
    if (this.#started) return;
    this.#started = true;
    // magic, deflate, no flags, no mtime, XFL as zlib writes it, OS unix
    this.push(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, this.#level === 9 ? 2 : this.#level === 1 ? 4 : 0, 3]));
  }

  #start(seg: Buffer): void {
    this.#crc = crc32(seg, this.#crc);
    this.#size += seg.length;
    const dict = this.#tail;
    if (seg.length >= WINDOW) this.#tail = seg.subarray(seg.length - WINDOW);
    else this.#tail = Buffer.concat(dict ? [dict, seg] : [seg]).subarray(-WINDOW);
    const job = segment(seg, dict, this.#level);
    job.catch(() => {}); // awaited in order by #drainTo; a failure is reported there
    this.#inflight.push(job);
  }

  async #drainTo(max: number): Promise<void> {
    this.#header();
    while (this.#inflight.length > max) for (const b of await this.#inflight.shift()!) this.push(b);
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    let off = 0;
    // Whole segments straight out of the chunk (no copy) when nothing is pending.
    if (this.#partLen === 0) for (; chunk.length - off >= SEGMENT; off += SEGMENT) this.#start(chunk.subarray(off, off + SEGMENT));
    while (off < chunk.length) {
      const n = Math.min(SEGMENT - this.#partLen, chunk.length - off);
      this.#parts.push(chunk.subarray(off, off + n));
      this.#partLen += n;
      off += n;
      if (this.#partLen === SEGMENT) this.#startParts();
    }
    this.#drainTo(this.#parallel - 1).then(() => cb(), cb);
  }

  #startParts(): void {
    const seg = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#partLen);
    this.#parts = [];
    this.#partLen = 0;
    this.#start(seg);
  }

  override _flush(cb: TransformCallback): void {
    if (this.#partLen > 0) this.#startParts();
    this.#drainTo(0).then(() => {
      const end = Buffer.alloc(10);
      end[0] = 3; // an empty final block (fixed Huffman, end-of-block), then the trailer
      end.writeUInt32LE(this.#crc >>> 0, 2);
      end.writeUInt32LE(this.#size % 2 ** 32, 6);
      this.push(end);
      cb();
    }, cb);
  }
}
