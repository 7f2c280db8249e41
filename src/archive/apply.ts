/**
 * Apply an OCI/Docker layer (a tar, optionally gzip or zstd) to a directory, safely.
 *
 * Every entry is resolved component by component inside the root, with lstat and without any
 * cached lookup (containerd's fs.RootPath semantics: a symlink met on the way is resolved
 * relative to the root, and `..` never climbs above it). The final component is never followed:
 * files are created with O_CREAT|O_EXCL|O_NOFOLLOW after removing what was there, metadata of
 * files and directories is set through a file descriptor opened with O_NOFOLLOW, and symlinks
 * only ever get lchown/lutimes. So no write, link, chmod, chown or utimes lands outside the root.
 *
 * The uncompressed tar bytes are hashed as they flow: the result's diffId is what the image
 * config's rootfs.diff_ids lists for this layer.
 *
 * Filesystem calls are synchronous on purpose: one entry is a handful of syscalls and a
 * thread-pool round trip per call would cost more than the call.
 */
import {
  closeSync,
  constants as C,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  linkSync,
  lchownSync,
  chmodSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { posix, resolve as resolvePath } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BerthError } from '../errors.js';
import type { ProgressEvent } from '../oci/content.js';
import type { Compression } from '../oci/mediatype.js';
import { CountingStream, DigestStream } from '../oci/digest.js';
import type { Digest } from '../oci/types.js';
import { decompressStream, detectCompression } from './compress.js';
import { native, S_IFBLK, S_IFCHR, S_IFIFO } from './native.js';
import { patchPaxDecoder, paxXattrs } from './pax.js';

patchPaxDecoder();

export interface ApplyLimits {
  /** Largest declared size of one entry (bytes). */
  maxEntrySize: number;
  /** Largest uncompressed tar stream (bytes): a decompression bomb is cut off here. */
  maxTotal: number;
  /** Longest entry name or link target (bytes). */
  maxNameLen: number;
  /** Most entries in one layer. */
  maxEntries: number;
}

export const DEFAULT_LIMITS: Readonly<ApplyLimits> = {
  maxEntrySize: 32 * 1024 ** 3,
  maxTotal: 64 * 1024 ** 3,
  maxNameLen: 4096,
  maxEntries: 2_000_000,
};

export type WhiteoutMode = 'overlay' | 'apply';

export interface ApplyOptions {
  /** Compression of the input; sniffed from the magic bytes when absent. */
  compression?: Compression;
  /**
   * 'apply': the layer is unpacked over its lower layers in one directory; whiteouts delete.
   * 'overlay': the layer gets its own directory (an overlayfs lowerdir); whiteouts become 0/0
   * character devices and opaque directories get trusted.overlay.opaque=y.
   */
  whiteouts: WhiteoutMode;
  limits?: Partial<ApplyLimits>;
  signal?: AbortSignal;
  onProgress?: (e: ProgressEvent) => void;
  /** What to call the layer in errors and progress (e.g. its digest). */
  what?: string;
  /** Compressed size, for progress events. */
  size?: number;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: Digest;
  /** Bytes of the uncompressed tar stream. */
  size: number;
  entries: number;
}

const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';
/** xattrs a layer may set; trusted.* (overlay's own), system.* and the rest are ignored. */
const XATTR_ALLOWED = (name: string) => name === 'security.capability' || name.startsWith('user.');
const MAX_SYMLINKS = 255;
const IS_ROOT = process.getuid?.() === 0;

class EntryError extends Error {}

/** Normalise an entry name to a relative path inside the root ('' is the root itself). */
function cleanName(name: string): string {
  // posix.normalize on an absolute path drops every `..` that would climb above '/'.
  const n = posix.normalize('/' + name);
  return n === '/' ? '' : n.replace(/\/+$/, '').slice(1);
}

interface Resolved {
  /** Absolute path inside the root. */
  path: string;
  /** Whether every component exists (as a non-symlink). */
  exists: boolean;
}

/**
 * containerd's fs.RootPath: resolve `rel` inside `root`, following symlinks (all of them,
 * including the last component) as if `root` were `/`. Nothing is cached between calls.
 */
function rootPath(root: string, rel: string): Resolved {
  const todo = rel.split('/').filter((p) => p !== '' && p !== '.');
  const cur: string[] = [];
  let links = 0;
  let exists = true;
  while (todo.length > 0) {
    const p = todo.shift()!;
    if (p === '..') {
      cur.pop();
      continue;
    }
    cur.push(p);
    if (!exists) continue;
    const full = root + '/' + cur.join('/');
    const st = lstatOrUndefined(full);
    if (!st) {
      exists = false;
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new EntryError('too many levels of symbolic links');
      const target = readlinkSync(full);
      cur.pop();
      if (target.startsWith('/')) cur.length = 0;
      todo.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
    }
  }
  return { path: cur.length ? root + '/' + cur.join('/') : root, exists };
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    // throwIfNoEntry: an ENOENT exception (with its stack trace) costs more than the syscall.
    return lstatSync(p, { throwIfNoEntry: false });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** Create the missing directories of `path` (already resolved inside `root`, so symlink-free). */
function mkdirInRoot(root: string, path: string): void {
  const rel = path.slice(root.length + 1);
  if (!rel) return;
  let cur = root;
  for (const p of rel.split('/')) {
    cur += '/' + p;
    const st = lstatOrUndefined(cur);
    if (!st) mkdirSync(cur, 0o755);
    else if (st.isSymbolicLink()) throw new EntryError(`parent ${JSON.stringify(cur.slice(root.length))} changed into a symlink`);
    else if (!st.isDirectory()) throw new EntryError(`parent ${JSON.stringify(cur.slice(root.length))} is not a directory`);
  }
}

function removeAll(p: string, st: Stats): void {
  if (st.isDirectory()) rmSync(p, { recursive: true, force: true });
  else unlinkSync(p);
}

interface DirTimes {
  rel: string;
  dev: number;
  ino: number;
  atime: Date;
  mtime: Date;
}

function paxTime(v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? new Date(n * 1000) : undefined;
}

function paxInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/** Apply one layer to `dir`; see the module comment. */
export async function applyLayer(input: Readable, dir: string, opts: ApplyOptions): Promise<ApplyResult> {
  const what = opts.what ?? 'layer';
  const limits: ApplyLimits = { ...DEFAULT_LIMITS, ...(opts.limits ?? {}) };
  const root = resolvePath(dir);
  const rootSt = lstatOrUndefined(root);
  if (!rootSt?.isDirectory()) throw new BerthError('INVALID_ARGUMENT', `${what}: target ${root} is not a directory`);
  const mode = opts.whiteouts;
  if (mode !== 'overlay' && mode !== 'apply') throw new BerthError('INVALID_ARGUMENT', `${what}: whiteouts must be 'overlay' or 'apply'`);
  if (opts.signal?.aborted) throw new BerthError('ABORTED', `${what}: aborted`);

  let compression = opts.compression;
  let src = input;
  if (compression === undefined) ({ compression, stream: src } = await detectCompression(input));

  const ac = new AbortController();
  const onAbort = () => ac.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const progress = opts.onProgress;
  const counter = new CountingStream(progress ? { every: 1 << 20, onBytes: (n) => progress({ type: 'blob-progress', digest: what, done: n, size: opts.size ?? 0 }) } : {});
  const tap = new DigestStream({
    max: limits.maxTotal,
    overflow: (max) => new BerthError('INVALID_ARGUMENT', `${what}: uncompressed size exceeds the limit of ${max} bytes`, { hint: 'the layer is corrupt or a decompression bomb' }),
  });
  const extract = tolerateMissingTrailer(tar.extract());
  let failure: unknown;
  const feed = pipeline(src, counter, decompressStream(compression, what), tap, extract as unknown as Writable, { signal: ac.signal }).catch((e: unknown) => {
    failure ??= e;
  });

  const unpacked = new Set<string>();
  const dirTimes: DirTimes[] = [];
  let entries = 0;
  let current = '';
  try {
    for await (const entry of extract) {
      const h = entry.header;
      current = h.name;
      if (opts.signal?.aborted) throw new BerthError('ABORTED', `${what}: aborted`);
      if (++entries > limits.maxEntries) throw new EntryError(`more than ${limits.maxEntries} entries`);
      await applyEntry(h as tar.Header & { pax?: Record<string, string> | null }, entry as unknown as Readable);
      // Whatever was not read (bodies of entries that have none in the filesystem) is skipped.
      const s = entry as unknown as { readableEnded?: boolean; destroyed?: boolean; resume(): void };
      s.resume();
    }
  } catch (e) {
    failure ??= e;
    ac.abort(e);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  await feed;
  if (failure !== undefined) throw toBerthError(failure, what, current, opts.signal);

  // Directory times last (creating children changed them), and only on the same directory.
  for (let i = dirTimes.length - 1; i >= 0; i--) {
    const d = dirTimes[i]!;
    try {
      const target = d.rel === '' ? root : parentJoin(root, d.rel);
      const st = lstatOrUndefined(target);
      if (st?.isDirectory() && st.ino === d.ino && st.dev === d.dev) lutimesSync(target, d.atime, d.mtime);
    } catch {
      /* a directory removed or replaced by a later entry keeps whatever time it has */
    }
  }
  progress?.({ type: 'blob-progress', digest: what, done: counter.size, size: opts.size ?? counter.size });
  return { diffId: tap.digest(), size: tap.size, entries };

  /** The path of entry `rel`: its parent resolved inside the root, its last component not followed. */
  function parentJoin(r: string, rel: string): string {
    const i = rel.lastIndexOf('/');
    const parent = rootPath(r, i === -1 ? '' : rel.slice(0, i));
    return parent.path + '/' + rel.slice(i + 1);
  }

  async function applyEntry(h: tar.Header & { pax?: Record<string, string> | null }, body: Readable): Promise<void> {
    const name = h.name;
    if (name.length > limits.maxNameLen) throw new EntryError(`name longer than ${limits.maxNameLen} bytes`);
    if (name.includes('\0')) throw new EntryError('name contains a NUL byte');
    const linkname = h.linkname ?? '';
    if (linkname.length > limits.maxNameLen) throw new EntryError(`link target longer than ${limits.maxNameLen} bytes`);
    if (linkname.includes('\0')) throw new EntryError('link target contains a NUL byte');
    const size = h.size ?? 0;
    if (!(size >= 0) || size > limits.maxEntrySize) throw new EntryError(`declared size ${size} exceeds the limit of ${limits.maxEntrySize} bytes`);
    const type = h.type as string | null;
    if (!['file', 'contiguous-file', 'directory', 'symlink', 'link', 'character-device', 'block-device', 'fifo'].includes(type ?? '')) {
      throw new EntryError(`unsupported entry type ${JSON.stringify(type ?? 'unknown')}`);
    }

    const rel = cleanName(name);
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    const parentRel = slash === -1 ? '' : rel.slice(0, slash);
    const pax = h.pax ?? undefined;
    const uid = paxInt(pax?.uid) ?? h.uid ?? 0;
    const gid = paxInt(pax?.gid) ?? h.gid ?? 0;
    const perm = (h.mode ?? 0) & 0o7777;
    const mtime = paxTime(pax?.mtime) ?? h.mtime ?? new Date(0);
    const atime = paxTime(pax?.atime) ?? mtime;

    if (rel === '') {
      if (type !== 'directory') throw new EntryError('entry names the root but is not a directory');
      setDirMeta(root, '', uid, gid, perm, atime, mtime);
      return;
    }

    // Whiteouts.
    if (base.startsWith(WH_PREFIX)) {
      const parent = rootPath(root, parentRel);
      if (base === WH_OPAQUE) {
        if (mode === 'apply') {
          if (parent.exists && lstatOrUndefined(parent.path)?.isDirectory()) opaque(parent.path);
        } else {
          if (!parent.exists) mkdirInRoot(root, parent.path);
          const st = lstatSync(parent.path);
          if (!st.isDirectory()) throw new EntryError('opaque whiteout in something that is not a directory');
          native().lsetxattr(parent.path, 'trusted.overlay.opaque', Buffer.from('y'), 0);
        }
        return;
      }
      const orig = base.slice(WH_PREFIX.length);
      if (orig === '' || orig === '.' || orig === '..') throw new EntryError('invalid whiteout name');
      const target = parent.path + '/' + orig;
      if (unpacked.has(target)) return; // whiteouts hide lower layers only
      if (mode === 'apply') {
        if (!parent.exists) return;
        const st = lstatOrUndefined(target);
        if (st) removeAll(target, st);
      } else {
        if (!parent.exists) mkdirInRoot(root, parent.path);
        const st = lstatOrUndefined(target);
        if (st) removeAll(target, st);
        native().mknod(target, S_IFCHR | 0o000, 0, 0);
        unpacked.add(target);
      }
      return;
    }

    const parent = rootPath(root, parentRel);
    if (!parent.exists) mkdirInRoot(root, parent.path);
    else if (parent.path !== root && !lstatSync(parent.path).isDirectory()) throw new EntryError('parent is not a directory');
    const target = parent.path + '/' + base;
    const existing = lstatOrUndefined(target);
    if (existing && !(type === 'directory' && existing.isDirectory())) removeAll(target, existing);
    const xattrs = [...paxXattrs(pax)].filter(([k]) => XATTR_ALLOWED(k));

    switch (type) {
      case 'directory': {
        if (!existing?.isDirectory()) mkdirSync(target, 0o700);
        setDirMeta(target, rel, uid, gid, perm, atime, mtime);
        for (const [k, v] of xattrs) native().lsetxattr(target, k, v, 0);
        break;
      }
      case 'file':
      case 'contiguous-file': {
        const fd = openSync(target, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
        try {
          let written = 0;
          for await (const chunk of body) {
            const b = chunk as Buffer;
            let off = 0;
            while (off < b.length) off += writeSync(fd, b, off, b.length - off);
            written += b.length;
          }
          if (written !== size) throw new EntryError(`body has ${written} bytes, the header says ${size}`);
          if (IS_ROOT) fchownSync(fd, uid, gid);
          fchmodSync(fd, perm); // after chown, which clears setuid/setgid
          for (const [k, v] of xattrs) native().lsetxattr(target, k, v, 0); // after chown, which clears capabilities
          futimesSync(fd, atime, mtime);
        } finally {
          closeSync(fd);
        }
        break;
      }
      case 'symlink': {
        symlinkSync(linkname, target);
        if (IS_ROOT) lchownSync(target, uid, gid);
        lutimesSync(target, atime, mtime);
        break;
      }
      case 'link': {
        const lrel = cleanName(linkname);
        if (lrel === '') throw new EntryError('hard link to the root');
        const src = parentJoin(root, lrel);
        const st = lstatOrUndefined(src);
        if (!st) throw new EntryError(`hard link target ${JSON.stringify(linkname)} does not exist`);
        if (st.isDirectory()) throw new EntryError(`hard link target ${JSON.stringify(linkname)} is a directory`);
        // link(2) does not follow a symlink named by its first argument: the link is to the link.
        linkSync(src, target);
        break;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        const fmt = type === 'fifo' ? S_IFIFO : type === 'block-device' ? S_IFBLK : S_IFCHR;
        native().mknod(target, fmt | perm, h.devmajor ?? 0, h.devminor ?? 0);
        if (IS_ROOT) lchownSync(target, uid, gid);
        // The node was just made by us (mknod never follows), so chmod names it, not a link.
        if (!lstatSync(target).isSymbolicLink()) chmodSync(target, perm);
        for (const [k, v] of xattrs) native().lsetxattr(target, k, v, 0);
        lutimesSync(target, atime, mtime);
        break;
      }
    }
    unpacked.add(target);
  }

  function setDirMeta(path: string, rel: string, uid: number, gid: number, perm: number, atime: Date, mtime: Date): void {
    const fd = openSync(path, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
    try {
      if (IS_ROOT) fchownSync(fd, uid, gid);
      fchmodSync(fd, perm);
      const st = fstatSync(fd);
      dirTimes.push({ rel, dev: st.dev, ino: st.ino, atime, mtime });
    } finally {
      closeSync(fd);
    }
  }

  /** Apply-mode opaque directory: remove what lower layers put in `dirPath`. */
  function opaque(dirPath: string): void {
    for (const n of readdirSync(dirPath)) keepUnpacked(dirPath + '/' + n);
  }

  function keepUnpacked(p: string): void {
    const st = lstatOrUndefined(p);
    if (!st) return;
    if (!unpacked.has(p)) {
      removeAll(p, st);
      return;
    }
    if (st.isDirectory()) for (const n of readdirSync(p)) keepUnpacked(p + '/' + n);
  }
}

/**
 * Go's archive/tar writers that are not closed (umoci's layers, among others) end a layer
 * right after the last entry's data: no padding to 512 bytes and no end-of-archive blocks.
 * Docker, containerd and umoci accept that; tar-stream fails with "Unexpected end of data".
 * Accept a stream that ends inside the padding after a complete entry (its data was whole),
 * and still fail one that ends inside an entry's data or header. This reads tar-stream 3's
 * internal state (_stream, _missing, _longHeader, _buffer) of this one instance.
 */
function tolerateMissingTrailer(extract: tar.Extract): tar.Extract {
  const x = extract as unknown as {
    _final(cb: (e?: Error | null) => void): void;
    _stream: unknown;
    _missing: number;
    _longHeader: boolean;
    _buffer: { buffered: number };
  };
  const orig = x._final;
  if (typeof orig !== 'function' || typeof x._missing !== 'number') return extract;
  x._final = function (this: typeof x, cb: (e?: Error | null) => void) {
    if (this._stream === null && !this._longHeader && this._missing > 0 && this._missing < 512 && this._buffer.buffered === 0) this._missing = 0;
    orig.call(this, cb);
  };
  return extract;
}

function toBerthError(e: unknown, what: string, entry: string, signal?: AbortSignal): BerthError {
  if (e instanceof BerthError) return e;
  const at = entry ? `${what}: entry ${JSON.stringify(entry.length > 200 ? entry.slice(0, 200) + '…' : entry)}` : what;
  if (e instanceof EntryError) return new BerthError('INVALID_ARGUMENT', `${at}: ${e.message}`);
  const err = e as NodeJS.ErrnoException;
  if (signal?.aborted || err?.name === 'AbortError' || err?.code === 'ABORT_ERR') return new BerthError('ABORTED', `${what}: aborted`, { cause: e });
  const msg = err?.message ?? String(e);
  switch (err?.code) {
    case 'ENOSPC':
      return new BerthError('UNAVAILABLE', `${at}: no space left on device`, { cause: e });
    case 'EROFS':
      return new BerthError('UNAVAILABLE', `${at}: read-only file system`, { cause: e });
    case 'EPERM':
    case 'EACCES':
      return new BerthError('UNAVAILABLE', `${at}: permission denied (${err.code})`, { cause: e, hint: 'unpacking layers needs root' });
  }
  if (/Unexpected end of data|premature close/i.test(msg) || err?.code === 'Z_BUF_ERROR' || err?.code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new BerthError('INVALID_ARGUMENT', `${what}: truncated layer`, { cause: e });
  }
  if (/Invalid tar header|Invalid header|Header exceeds/i.test(msg)) return new BerthError('INVALID_ARGUMENT', `${at}: not a tar stream (${msg})`, { cause: e });
  if (err?.code?.startsWith?.('Z_')) return new BerthError('INVALID_ARGUMENT', `${what}: corrupt compressed data (${msg})`, { cause: e });
  return new BerthError('INVALID_ARGUMENT', `${at}: ${err?.code ? `${err.code} ` : ''}${msg}`, { cause: e });
}
