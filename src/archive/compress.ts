/**
 * Layer compression: gzip through node:zlib; zstd through zlib where this Node has it (22.15+,
 * feature-detected), else a `zstd` child process.
 *
 * Node 20 has no zstd in zlib. There we use the zstd CLI (`zstd -dc`, `zstd -c`) over pipes:
 * it is the reference implementation, multi-threaded when compressing, and several times
 * faster than a pure-JS decoder. When `zstd` is not installed, zstd layers fail with
 * UNSUPPORTED and a hint to install it (Debian: apt-get install zstd).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Duplex, Readable, PassThrough, type Transform } from 'node:stream';
import { availableParallelism } from 'node:os';
import { createGunzip, constants as zc } from 'node:zlib';
import * as zlib from 'node:zlib';
import { BerthError } from '../errors.js';
import { sniffCompression, type Compression } from '../oci/mediatype.js';
import { ParallelGzip } from './pgzip.js';

export type { Compression };

/** A Duplex over a child process's stdin (writable side) and stdout (readable side). */
class ProcessDuplex extends Duplex {
  readonly #child: ChildProcess;
  #stderr = '';
  #exited: Promise<void>;
  #stdoutEnded = false;

  constructor(cmd: string, args: string[], what: string) {
    super({ readableHighWaterMark: 1 << 20, writableHighWaterMark: 1 << 20 });
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      if (this.#stderr.length < 4096) this.#stderr += d;
    });
    this.#exited = new Promise<void>((resolve, reject) => {
      child.on('error', (e: NodeJS.ErrnoException) => {
        reject(
          e.code === 'ENOENT'
            ? new BerthError('UNSUPPORTED', `${what}: the ${cmd} program is not installed`, { cause: e, hint: `install ${cmd} (apt-get install ${cmd})` })
            : new BerthError('INTERNAL', `${what}: ${e.message}`, { cause: e }),
        );
      });
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else if (signal) reject(new BerthError('ABORTED', `${what}: ${cmd} killed by ${signal}`));
        else reject(new BerthError('INVALID_ARGUMENT', `${what}: ${this.#stderr.trim().split('\n').pop() || `${cmd} exited with ${code}`}`));
      });
    });
    this.#exited.catch((e) => this.destroy(e));
    child.stdout!.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout!.pause();
    });
    child.stdout!.on('end', () => {
      this.#stdoutEnded = true;
      this.#exited.then(() => this.push(null), () => {});
    });
    // EPIPE when the child dies early: the exit status carries the real error.
    child.stdin!.on('error', () => {});
  }

  override _read(): void {
    this.#child.stdout!.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#child.stdin!.write(chunk)) cb();
    else this.#child.stdin!.once('drain', () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.#child.stdin!.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null && !this.#stdoutEnded) this.#child.kill('SIGKILL');
    cb(err);
  }
}

/** The part of node:zlib that speaks zstd (Node >= 22.15). */
export interface ZlibZstd {
  createZstdCompress(o?: { params?: Record<number, number> }): Transform;
  createZstdDecompress(): Transform;
  constants: { ZSTD_c_compressionLevel: number };
}

/** `z`'s zstd when it has one (feature detection, not a version check), else undefined. */
export function zlibZstd(z: object = zlib): ZlibZstd | undefined {
  const m = z as Partial<ZlibZstd>;
  const ok = typeof m.createZstdCompress === 'function' && typeof m.createZstdDecompress === 'function' && typeof m.constants?.ZSTD_c_compressionLevel === 'number';
  return ok ? (m as ZlibZstd) : undefined;
}

const zstdInZlib = zlibZstd();

/** Which zstd this process uses: zlib's, or the `zstd` program. */
export const zstdBackend: 'zlib' | 'process' = zstdInZlib ? 'zlib' : 'process';

/** zlib's errors become one line naming `what` (as the child process's do). */
function namedErrors(t: Transform, what: string): Transform {
  const destroy = t._destroy.bind(t);
  t._destroy = (err, cb) =>
    destroy(err, (e) => cb(e && !(e instanceof BerthError) ? new BerthError('INVALID_ARGUMENT', `${what}: ${e.message.split('\n')[0]}`, { cause: e }) : e));
  return t;
}

/** A stream that decompresses `compression` (a pass-through for 'none'). */
export function decompressStream(compression: Compression, what = 'layer'): Duplex | Transform {
  switch (compression) {
    case 'none':
      return new PassThrough({ highWaterMark: 1 << 20 });
    case 'gzip':
      // Docker layers are sometimes concatenated gzip members; zlib handles that by default.
      return createGunzip({ chunkSize: 1 << 17 });
    case 'zstd':
      if (zstdInZlib) return namedErrors(zstdInZlib.createZstdDecompress(), what);
      return new ProcessDuplex('zstd', ['-dcq', '--no-progress'], what);
    default:
      throw new BerthError('UNSUPPORTED', `${what}: unknown compression ${JSON.stringify(compression)}`);
  }
}

/**
 * A stream that compresses to `compression` at `level` (gzip 0..9, zstd 1..19). gzip runs a
 * segment per core (see ParallelGzip); zstd runs in zlib where it can, else the multi-threaded
 * zstd program.
 */
export function compressStream(compression: Compression, level?: number, what = 'layer'): Duplex | Transform {
  switch (compression) {
    case 'none':
      return new PassThrough({ highWaterMark: 1 << 20 });
    case 'gzip':
      return new ParallelGzip(level ?? zc.Z_DEFAULT_COMPRESSION, availableParallelism());
    case 'zstd':
      if (zstdInZlib) return namedErrors(zstdInZlib.createZstdCompress({ params: { [zstdInZlib.constants.ZSTD_c_compressionLevel]: level ?? 3 } }), what);
      return new ProcessDuplex('zstd', ['-cq', '--no-progress', '-T0', `-${level ?? 3}`], what);
    default:
      throw new BerthError('UNSUPPORTED', `${what}: unknown compression ${JSON.stringify(compression)}`);
  }
}

/**
 * Sniff the compression of `input` from its magic bytes. Returns the compression and a stream
 * that yields the whole input again (the sniffed bytes included).
 */
export async function detectCompression(input: Readable): Promise<{ compression: Compression; stream: Readable; head: Buffer }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let n = 0;
  let done = false;
  while (n < 6) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
    head.push(b);
    n += b.length;
  }
  const headBytes = Buffer.concat(head);
  const compression = sniffCompression(headBytes);
  async function* all(): AsyncGenerator<Buffer> {
    let finished = done;
    try {
      yield* head;
      while (!finished) {
        const r = await it.next();
        if (r.done) finished = true;
        else yield r.value;
      }
    } finally {
      // Destroyed early: release (destroy) the input too.
      if (!finished) await it.return?.();
    }
  }
  const stream = Readable.from(all(), { objectMode: false, highWaterMark: 1 << 20 });
  return { compression, stream, head: headBytes };
}

/** Whether `head` starts with the xz magic (archives only: OCI has no xz layers). */
export function isXz(head: Uint8Array): boolean {
  return head.length >= 6 && head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a && head[5] === 0x00;
}

/** Decompress xz (`docker save | xz`) through an `xz -dc` child process. */
export function xzDecompressStream(what = 'archive'): Duplex {
  return new ProcessDuplex('xz', ['-dcq', '-T0'], what);
}
