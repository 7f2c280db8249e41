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

