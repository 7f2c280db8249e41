/**
 * The tar door for archives (docker-save, oci-archive): read members in order as streams, and
 * write deterministic archives. tar-stream is imported only under src/archive/.
 */
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError } from '../errors.js';

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'link' | 'other';

export interface TarEntryHeader {
  /** Member name as written in the archive (not normalised). */
  name: string;
  type: TarEntryType;
  size: number;
  /** Target of a symlink or hard link. */
  linkname?: string;
}

/**
 * Read a tar stream member by member. `onEntry` gets each member's header and a stream of its
 * body, and must consume (or drain) the body before the promise it returns settles. Errors of
 * the tar format (not a tar, truncated) become INVALID_ARGUMENT naming `what`.
 */
export async function readTarEntries(
  input: Readable,
  onEntry: (h: TarEntryHeader, body: Readable) => Promise<void>,
  opts: { what?: string; signal?: AbortSignal } = {},
): Promise<void> {
  const what = opts.what ?? 'archive';
  const extract = tar.extract();
  let entryError: unknown;
  const feed = pipeline(input, extract as unknown as Writable, opts.signal ? { signal: opts.signal } : {}).catch((e: unknown) => {
    entryError ??= e;
  });
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const t = h.type;
      const type: TarEntryType =
        t === 'file' || t === 'contiguous-file' ? 'file' : t === 'directory' ? 'directory' : t === 'symlink' ? 'symlink' : t === 'link' ? 'link' : 'other';
      const eh: TarEntryHeader = { name: h.name, type, size: h.size ?? 0 };
      if (h.linkname) eh.linkname = h.linkname;
      try {
        await onEntry(eh, entry as unknown as Readable);
      } finally {
        // Whatever the consumer left unread is skipped.
        (entry as unknown as Readable).resume();
      }
    }
  } catch (e) {
    entryError ??= e;
  }
  await feed;
  if (entryError !== undefined) throw tarError(entryError, what);
}

function tarError(e: unknown, what: string): BerthError {
  if (e instanceof BerthError) return e;
  const err = e as NodeJS.ErrnoException;
  const msg = err?.message ?? String(e);
  if (err?.name === 'AbortError' || err?.code === 'ABORT_ERR') return new BerthError('ABORTED', `${what}: aborted`, { cause: e });
  if (/Unexpected end|unexpected end of file|premature close/i.test(msg) || err?.code === 'Z_BUF_ERROR' || err?.code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new BerthError('INVALID_ARGUMENT', `${what}: archive is truncated`, { cause: e, hint: 'the file ends in the middle of a member; copy it again' });
  }
  if (/Invalid tar header|Invalid header|Header exceeds/i.test(msg)) {
    return new BerthError('INVALID_ARGUMENT', `${what}: not a tar archive (or a corrupt one)`, { cause: e, hint: 'give a file written by docker save, skopeo, ctr export or berth save' });
  }
  if (err?.code?.startsWith?.('Z_')) return new BerthError('INVALID_ARGUMENT', `${what}: corrupt compressed data (${msg})`, { cause: e });
  return new BerthError('INVALID_ARGUMENT', `${what}: ${msg}`, { cause: e });
}

export interface TarWriterEntry {
  name: string;
  /** 'file' (default) or 'directory'. */
  type?: 'file' | 'directory';
  size?: number;
  mode?: number;
}

/**
 * A deterministic tar writer: fixed mtime (0), uid/gid 0, empty owner names, mode 0644 for
 * files and 0755 for directories. The same calls give the same bytes.
 */
export class TarWriter {
  readonly #pack = tar.pack();
  /** The archive bytes. */
  readonly readable: Readable = this.#pack as unknown as Readable;

  #header(e: TarWriterEntry): Partial<tar.Header> & { name: string } {
    const dir = e.type === 'directory';
    return {
      name: dir && !e.name.endsWith('/') ? e.name + '/' : e.name,
      type: dir ? 'directory' : 'file',
      size: dir ? 0 : (e.size ?? 0),
      mode: e.mode ?? (dir ? 0o755 : 0o644),
      mtime: new Date(0),
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
    };
  }

  addDirectory(name: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pack.entry(this.#header({ name, type: 'directory' }), (err) => (err ? reject(err) : resolve()));
    });
  }

  addBytes(name: string, data: Buffer, mode?: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pack.entry(this.#header({ name, size: data.length, ...(mode !== undefined ? { mode } : {}) }), data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Add a member whose body is `body` (exactly `size` bytes). */
  async addStream(name: string, size: number, body: Readable, opts: { signal?: AbortSignal } = {}): Promise<void> {
    let done!: Promise<void>;
    const sink = new Promise<Writable>((resolve) => {
      done = new Promise<void>((res, rej) => {
        resolve(this.#pack.entry(this.#header({ name, size }), (err) => (err ? rej(err) : res())) as unknown as Writable);
      });
    });
    await pipeline(body, await sink, opts.signal ? { signal: opts.signal } : {});
    await done;
  }

  finish(): void {
    this.#pack.finalize();
  }

  destroy(e?: Error): void {
    (this.#pack as unknown as Readable).destroy(e);
  }
}


const ZEROS = Buffer.alloc(1024);

function octal(v: number, width: number): string {
  const s = v.toString(8);
  return s.length > width ? '7'.repeat(width) + ' ' : s.padStart(width, '0') + ' ';
}

/**
 * The ustar header TarWriter (tar-stream) writes for `e`, byte for byte, or undefined when the
 * name needs a pax header (non-ASCII, or too long for name + prefix).
 */
export function ustarHeader(e: TarWriterEntry): Buffer | undefined {
  const dir = e.type === 'directory';
  let name = dir && !e.name.endsWith('/') ? e.name + '/' : e.name;
  if (!/^[\x01-\x7f]*$/.test(name)) return undefined;
  let prefix = '';
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return undefined;
    prefix += prefix ? '/' + name.slice(0, i) : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (prefix.length > 155) return undefined;
  const size = dir ? 0 : (e.size ?? 0);
  if (size.toString(8).length > 11) return undefined;
  const h = Buffer.alloc(512);
  h.write(name, 0, 'latin1');
  h.write(octal((e.mode ?? (dir ? 0o755 : 0o644)) & 0o7777, 6), 100, 'latin1');
  h.write(octal(0, 6), 108, 'latin1');
  h.write(octal(0, 6), 116, 'latin1');
  h.write(octal(size, 11), 124, 'latin1');
  h.write(octal(0, 11), 136, 'latin1');
  h[156] = dir ? 0x35 : 0x30;
  h.write('ustar\x00', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.write(octal(0, 6), 329, 'latin1');
  h.write(octal(0, 6), 337, 'latin1');
  if (prefix) h.write(prefix, 345, 'latin1');
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += h[i]!;
  for (let i = 156; i < 512; i++) sum += h[i]!;
  h.write(octal(sum, 6), 148, 'latin1');
  return h;
}

/**
 * TarWriter's archive written straight into a file with positioned writes: file bodies are
 * copied from other files through two reused 1 MiB buffers (reading one while the other is
 * written), so a gigabyte costs no fresh memory (fresh buffers cost ~2 s of page faults per
 * GB here) and no stream hops. Same bytes as TarWriter, for names that need no pax header
 * (save's names: blobs/sha256/<hex>, index.json, ...); others are an INTERNAL error.
 */
export class TarFileWriter {
  #pos = 0;
  readonly #bufs = [Buffer.allocUnsafeSlow(1 << 20), Buffer.allocUnsafeSlow(1 << 20)];
  constructor(private readonly out: import('node:fs/promises').FileHandle) {}

  async #write(b: Buffer, at: number): Promise<void> {
    for (let off = 0; off < b.length; ) off += (await this.out.write(b, off, b.length - off, at + off)).bytesWritten;
  }

  #header(e: TarWriterEntry): Buffer {
    const h = ustarHeader(e);
    if (!h) throw new BerthError('INTERNAL', `tar member name ${JSON.stringify(e.name)} needs a pax header`);
    return h;
  }

  #pad(size: number): Buffer {
    return ZEROS.subarray(0, (512 - (size % 512)) % 512);
  }

  async addDirectory(name: string): Promise<void> {
    await this.#write(this.#header({ name, type: 'directory' }), this.#pos);
    this.#pos += 512;
  }

  async addBytes(name: string, data: Buffer): Promise<void> {
    const all = Buffer.concat([this.#header({ name, size: data.length }), data, this.#pad(data.length)]);
    await this.#write(all, this.#pos);
    this.#pos += all.length;
  }

  /** Copy `size` bytes of `src` as member `name`; `onBytes` sees the running count. */
  async addFile(name: string, size: number, src: import('node:fs/promises').FileHandle, opts: { signal?: AbortSignal; onBytes?: (n: number) => void } = {}): Promise<void> {
    await this.#write(this.#header({ name, size }), this.#pos);
    const base = this.#pos + 512;
    let done = 0;
    let pending: Promise<void> | undefined;
    try {
      for (let i = 0; done < size; i++) {
        opts.signal?.throwIfAborted();
        const buf = this.#bufs[i & 1]!;
        const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - done), done);
        if (bytesRead === 0) throw new BerthError('INTERNAL', `${name}: the file ended after ${done} of ${size} bytes`);
        await pending; // the other buffer's write: done before that buffer is read into again
        pending = this.#write(buf.subarray(0, bytesRead), base + done);
        done += bytesRead;
        opts.onBytes?.(done);
      }
    } finally {
      await pending?.catch(() => {});
    }
    await pending;
    const pad = this.#pad(size);
    if (pad.length) await this.#write(pad, base + size);
    this.#pos = base + size + pad.length;
  }

  /** The end-of-archive blocks. */
  async finish(): Promise<void> {
    await this.#write(ZEROS, this.#pos);
    this.#pos += 1024;
  }
}
