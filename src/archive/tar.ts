/**
 * The tar door for archives (docker-save, oci-archive): read members in order as streams, and
 * write deterministic archives. tar-stream is imported only under src/archive/.
 */
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError } from '../errors.js';
import { patchPaxDecoder, paxXattrs } from './pax.js';

patchPaxDecoder();

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'link' | 'other';

export interface TarEntryHeader {
  /** Member name as written in the archive (not normalised). */
  name: string;
  type: TarEntryType;
  size: number;
  /** Target of a symlink or hard link. */
  linkname?: string;
  /** Permission bits (with setuid/setgid/sticky), owner, and mtime in whole seconds. */
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  /** PAX `SCHILY.xattr.*` records: name -> raw value. */
  xattrs?: Map<string, Buffer>;
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
      if (h.mode !== undefined) eh.mode = h.mode;
      if (h.uid !== undefined) eh.uid = h.uid;
      if (h.gid !== undefined) eh.gid = h.gid;
      if (h.mtime !== undefined) eh.mtime = Math.floor(h.mtime.getTime() / 1000);
      const x = paxXattrs(h.pax as Record<string, string> | null | undefined);
      if (x.size > 0) eh.xattrs = x;
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

/**
 * A regular file read through two reused buffers: one is read ahead while the caller works on
 * the other. Chunks handed out live in those buffers, valid until the caller asks for more.
 */
class PooledFile {
  readonly #bufs = [Buffer.allocUnsafeSlow(2 << 20), Buffer.allocUnsafeSlow(2 << 20)];
  #i = 0;
  #cur = Buffer.alloc(0);
  #pos = 0;
  #readAt = 0;
  #ahead: Promise<number> | undefined;
  constructor(private readonly fh: import('node:fs/promises').FileHandle) {
    this.#readAhead();
  }
  #readAhead(): void {
    const b = this.#bufs[this.#i ^ 1]!;
    const at = this.#readAt;
    this.#ahead = this.fh.read(b, 0, b.length, at).then((r) => r.bytesRead);
    this.#ahead.catch(() => {});
  }
  /** Make the read-ahead buffer current (the old one is free: its chunks were used up). */
  async #next(): Promise<boolean> {
    const n = await this.#ahead!;
    this.#i ^= 1;
    this.#cur = this.#bufs[this.#i]!.subarray(0, n);
    this.#pos = 0;
    this.#readAt += n;
    this.#readAhead();
    return n > 0;
  }
  /** Up to `max` bytes (at least one), or undefined at the end of the file. */
  async take(max: number): Promise<Buffer | undefined> {
    if (this.#pos === this.#cur.length && !(await this.#next())) return undefined;
    const n = Math.min(max, this.#cur.length - this.#pos);
    const c = this.#cur.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return c;
  }
  /** Exactly `n` bytes (a copy when they straddle two reads), or fewer at the end of the file. */
  async exactly(n: number): Promise<Buffer> {
    const first = await this.take(n);
    if (!first || first.length === n) return first ?? Buffer.alloc(0);
    const parts = [Buffer.from(first)];
    let got = first.length;
    while (got < n) {
      const c = await this.take(n - got);
      if (!c) break;
      parts.push(Buffer.from(c));
      got += c.length;
    }
    return Buffer.concat(parts);
  }
  /** Skip `n` bytes; false when the file ends first. Whole blocks past the buffers are not read. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    const here = Math.min(left, this.#cur.length - this.#pos);
    this.#pos += here;
    left -= here;
    if (left === 0) return true;
    const ahead = await this.#ahead!;
    if (left < ahead) {
      this.#ahead = Promise.resolve(ahead);
      await this.#next();
      this.#pos = left;
      return true;
    }
    left -= ahead;
    const size = (await this.fh.stat()).size;
    this.#readAt += ahead + left;
    this.#cur = Buffer.alloc(0);
    this.#pos = 0;
    this.#readAhead();
    return this.#readAt <= size;
  }
}

function octalField(b: Buffer, off: number, len: number): number {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    let v = 0;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  const s = f.toString('latin1').replace(/\0.*$/s, '').trim();
  return s ? parseInt(s, 8) : 0;
}

function strField(b: Buffer, off: number, len: number): string {
  const f = b.subarray(off, off + len);
  const z = f.indexOf(0);
  return f.subarray(0, z === -1 ? f.length : z).toString('utf8');
}

function paxRecords(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let b = buf;
  while (b.length) {
    const sp = b.indexOf(32);
    const len = parseInt(b.subarray(0, sp).toString('latin1'), 10);
    if (!len || sp === -1) break;
    const kv = b.subarray(sp + 1, len - 1).toString('utf8');
    const eq = kv.indexOf('=');
    if (eq === -1) break;
    out[kv.slice(0, eq)] = kv.slice(eq + 1);
    b = b.subarray(len);
  }
  return out;
}

const HEADER_ERROR = 'Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?';

/**
 * readTarEntries for an uncompressed tar file, without streams: the file is read through two
 * reused 2 MiB buffers (fresh buffers per chunk cost ~2 s of page faults per GB here), and the
 * unread rest of a member is skipped without reading it. ustar, GNU long names and pax path /
 * linkpath / size are understood, as tar-stream does. `body` yields chunks that are valid only
 * until the next one is asked for: copy what you keep.
 */
export async function readTarFileEntries(
  path: string,
  onEntry: (h: TarEntryHeader, body: AsyncIterable<Buffer>) => Promise<void>,
  opts: { what?: string; signal?: AbortSignal } = {},
): Promise<void> {
  const what = opts.what ?? 'archive';
  const { open } = await import('node:fs/promises');
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw tarError(e, what);
  }
  const f = new PooledFile(fh);
  try {
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: Record<string, string> = {};
    let global: Record<string, string> = {};
    for (;;) {
      opts.signal?.throwIfAborted();
      const h = await f.exactly(512);
      if (h.length === 0) break;
      if (h.length < 512) throw new Error('Unexpected end of data');
      let sum = 8 * 32;
      for (let i = 0; i < 148; i++) sum += h[i]!;
      for (let i = 156; i < 512; i++) sum += h[i]!;
      if (sum === 8 * 32) continue; // a zero block: the end marker (tar-stream reads on)
      if (sum !== octalField(h, 148, 8)) throw new Error(HEADER_ERROR);
      const magic = h.subarray(257, 263).toString('latin1');
      const ustar = magic === 'ustar\0';
      if (!ustar && !(magic === 'ustar ' && h[263] === 0x20 && h[264] === 0)) throw new Error('Invalid tar header: unknown format.');
      let name = strField(h, 0, 100);
      if (ustar && h[345]) name = strField(h, 345, 155) + '/' + name;
      let flag = h[156] === 0 ? 0x30 : h[156]!;
      if (flag === 0x30 && name.endsWith('/')) flag = 0x35;
      let size = octalField(h, 124, 12);
      const padded = size + ((512 - (size % 512)) % 512);
      if (flag === 0x78 || flag === 0x67 || flag === 0x4c || flag === 0x4b) {
        // pax (x, g) and GNU long name / link (L, K): the body describes the next member
        if (size > 1 << 20) throw new Error(HEADER_ERROR);
        const body = await f.exactly(padded);
        if (body.length < padded) throw new Error('Unexpected end of data');
        const data = body.subarray(0, size);
        if (flag === 0x78) pax = paxRecords(data);
        else if (flag === 0x67) global = { ...global, ...paxRecords(data) };
        else if (flag === 0x4c) longName = strField(data, 0, data.length);
        else longLink = strField(data, 0, data.length);
        continue;
      }
      const p = { ...global, ...pax };
      pax = {};
      if (longName !== undefined) name = longName;
      let linkname = h[157] === 0 ? undefined : strField(h, 157, 100);
      if (longLink !== undefined) linkname = longLink;
      longName = longLink = undefined;
      if (p.path) name = p.path;
      if (p.linkpath) linkname = p.linkpath;
      if (p.size) size = parseInt(p.size, 10);
      const type: TarEntryType =
        flag === 0x30 || flag === 0x37 ? 'file' : flag === 0x35 ? 'directory' : flag === 0x32 ? 'symlink' : flag === 0x31 ? 'link' : 'other';
      const eh: TarEntryHeader = { name, type, size: type === 'directory' || type === 'symlink' || type === 'link' ? 0 : size };
      if (linkname) eh.linkname = linkname;
      let left = type === 'file' || type === 'other' ? size : 0;
      let truncated = false;
      const body: AsyncIterable<Buffer> = {
        [Symbol.asyncIterator]: () => ({
          next: async (): Promise<IteratorResult<Buffer>> => {
            if (left === 0) return { done: true, value: undefined };
            opts.signal?.throwIfAborted();
            const c = await f.take(left);
            if (!c) {
              truncated = true;
              throw new Error('Unexpected end of data');
            }
            left -= c.length;
            return { done: false, value: c };
          },
        }),
      };
      await onEntry(eh, body);
      if (truncated) throw new Error('Unexpected end of data');
      const rest = left + (((512 - (size % 512)) % 512));
      if (rest > 0 && !(await f.skip(rest))) throw new Error('Unexpected end of data');
      if (type !== 'file' && type !== 'other' && size > 0 && !(await f.skip(size))) throw new Error('Unexpected end of data');
    }
  } catch (e) {
    throw tarError(e, what);
  } finally {
    await fh.close().catch(() => {});
  }
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
