/**
 * The layer writer: a directory's changes as an OCI layer tar stream.
 *
 * Two ways to find the changes:
 *   'overlay'  `dir` is an overlayfs upper dir (mounted with redirect_dir=off, metacopy=off,
 *              index=off, so it is a faithful diff): everything in it is a change; a 0/0
 *              character device is a deletion (`.wh.NAME`); a directory with
 *              trusted.overlay.opaque=y hides what lower layers had there (`.wh..wh..opq`).
 *   'compare'  `dir` is the new tree and `base` the old one (the copy driver): a double walk
 *              (containerd's fs.Changes) finds what was added, changed (type, mode, owner, size,
 *              mtime, link target, device number, xattrs) or deleted.
 *
 * The tar is written here (not by tar-stream) so that every byte is ours: POSIX ustar headers,
 * PAX records for long or non-ASCII names and link targets, large sizes and ids, and xattrs
 * with binary values (`SCHILY.xattr.security.capability`). Names are walked in byte order,
 * parents before children; owner names are empty; with `epoch` every mtime later than the
 * epoch is clamped to it (SOURCE_DATE_EPOCH). So the same tree always gives the same bytes.
 *
 * Hard links: a regular file whose inode was already written in this layer becomes a link
 * entry to the first name (so a hard link to a setuid file keeps pointing at one inode).
 * Sockets cannot be put in a tar and are skipped, as docker does.
 *
 * Runtime leftovers (what runc and berth create in a container's rootfs to mount things on)
 * are dropped by `runtimeLeftover`, see there.
 */
import { closeSync, lstatSync, openSync, read, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { BerthError } from '../errors.js';
import { native } from './native.js';

export type LayerSource = 'overlay' | 'compare';

export interface WriteLayerOptions {
  /** The overlay upper dir ('overlay') or the new tree ('compare'). */
  dir: string;
  mode: LayerSource;
  /** 'compare': the tree the changes are relative to (absent: everything in `dir` is new). */
  base?: string;
  /** Seconds since 1970: mtimes later than this are written as this (SOURCE_DATE_EPOCH). */
  epoch?: number;
  /** Paths (relative, no leading slash: `etc/passwd`) to leave out, with everything below them. */
  exclude?: (relPath: string) => boolean;
  /** Keep runtime leftovers instead of dropping them (tests; a rootfs that is not a container's). */
  keepRuntimeLeftovers?: boolean;
  signal?: AbortSignal;
}

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';

/**
 * The paths runc and berth make in a container's rootfs only so that something can be mounted
 * on them: the default mounts' directories (runc creates each destination, /dev/pts under /dev
 * included, before it mounts) and the /etc/hosts, /etc/resolv.conf and /etc/hostname files berth
 * bind-mounts.
 */
export const RUNTIME_MOUNT_DIRS: ReadonlySet<string> = new Set(['proc', 'sys', 'sys/fs/cgroup', 'dev', 'dev/pts', 'dev/shm', 'dev/mqueue']);
export const RUNTIME_MOUNT_FILES: ReadonlySet<string> = new Set(['etc/hosts', 'etc/resolv.conf', 'etc/hostname']);
/** Mount points and the directories above them (`sys/fs`, `etc`). */
const RUNTIME_PATHS: ReadonlySet<string> = new Set(
  [...RUNTIME_MOUNT_DIRS, ...RUNTIME_MOUNT_FILES].flatMap((p) => p.split('/').map((_, i, a) => a.slice(0, i + 1).join('/'))),
);

/**
 * THE rule for runtime leftovers, in one place. A path is a leftover, and is not part of the
 * diff, when it did not exist before (`inBase` false; an overlay upper dir only holds a path
 * that was created or changed) and is what the runtime creates: an empty regular file at a file
 * mount point, or a directory at a mount point or above one that holds nothing but leftovers. A
 * process cannot write to a path while something is mounted on it, so such a stub is never its
 * work; anything else there (content, another type, other files) is kept. A directory that
 * existed before and only changed because leftovers were made in it (its mtime; in overlay,
 * its copy-up) is not written either unless something else below it is: see `writeLayer`.
 */
export function runtimeLeftover(relPath: string, path: string, st: { isDirectory(): boolean; isFile(): boolean; size: number | bigint }, inBase: boolean): boolean {
  if (inBase || !RUNTIME_PATHS.has(relPath)) return false;
  if (st.isFile()) return RUNTIME_MOUNT_FILES.has(relPath) && Number(st.size) === 0;
  if (!st.isDirectory()) return false;
  return readdirSync(path).every((n) => {
    const c = lstatSync(`${path}/${n}`, { throwIfNoEntry: false });
    return c !== undefined && runtimeLeftover(`${relPath}/${n}`, `${path}/${n}`, c, false);
  });
}

// ---- the tar encoder ----

const BLOCK = 512;
const ZERO = Buffer.alloc(BLOCK * 2);
/** The tar stream's chunk size (ParallelGzip's segment: whole chunks are compressed in place). */
const CHUNK = 1 << 20;
/** Files up to this size are read ahead whole (see `bytes` in writeLayer). */
const SMALL_FILE = 256 << 10;

type EntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';
const TYPEFLAG: Record<EntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

interface TarHeader {
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: [string, Buffer][];
}

const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

function writeOctal(buf: Buffer, off: number, width: number, n: number): void {
  buf.write(n.toString(8).padStart(width - 1, '0'), off, width - 1, 'ascii');
  buf[off + width - 1] = 0;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + String(body.length).length;
  if (String(len).length !== String(body.length).length) len = body.length + String(len).length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x01-\x7f]*$/;

function ustar(h: Omit<TarHeader, 'xattrs'>, typeflag: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(h.name, 0, 100, 'utf8');
  writeOctal(b, 100, 8, h.mode & 0o7777);
  writeOctal(b, 108, 8, h.uid > MAX_OCTAL_8 ? 0 : h.uid);
  writeOctal(b, 116, 8, h.gid > MAX_OCTAL_8 ? 0 : h.gid);
  writeOctal(b, 124, 12, h.size > MAX_OCTAL_12 ? 0 : h.size);
  writeOctal(b, 136, 12, Math.max(0, Math.min(h.mtime, MAX_OCTAL_12)));
  b.write(typeflag, 156, 1, 'ascii');
  if (h.linkname) b.write(h.linkname, 157, 100, 'utf8');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  writeOctal(b, 329, 8, h.devmajor ?? 0);
  writeOctal(b, 337, 8, h.devminor ?? 0);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

/** The header block(s) of one entry: a PAX extended header first when ustar cannot hold it. */
export function encodeTarHeader(h: TarHeader): Buffer {
  const recs: Buffer[] = [];
  if (Buffer.byteLength(h.name) > 100 || !ASCII.test(h.name)) recs.push(paxRecord('path', Buffer.from(h.name, 'utf8')));
  if (h.linkname && (Buffer.byteLength(h.linkname) > 100 || !ASCII.test(h.linkname))) recs.push(paxRecord('linkpath', Buffer.from(h.linkname, 'utf8')));
  if (h.size > MAX_OCTAL_12) recs.push(paxRecord('size', Buffer.from(String(h.size))));
  if (h.uid > MAX_OCTAL_8) recs.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > MAX_OCTAL_8) recs.push(paxRecord('gid', Buffer.from(String(h.gid))));
  for (const [k, v] of h.xattrs ?? []) recs.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const main = ustar(h, TYPEFLAG[h.type]);
  if (recs.length === 0) return main;
  const data = Buffer.concat(recs);
  const base = h.name.replace(/\/$/, '').split('/').pop() ?? '';
  const paxName = Buffer.from(`PaxHeaders/${base}`).subarray(0, 100).toString('utf8').replace(/\uFFFD+$/, '');
  const ph = ustar({ name: paxName, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: h.mtime }, 'x');
  return Buffer.concat([ph, data, padding(data.length), main]);
}

function padding(size: number): Buffer {
  const r = size % BLOCK;
  return r === 0 ? Buffer.alloc(0) : ZERO.subarray(0, BLOCK - r);
}

// ---- walking ----

/** xattrs that belong to the filesystem underneath, not to the layer. */
function keepXattr(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && !name.startsWith('user.overlay.') && name !== 'security.selinux';
}

function xattrsOf(path: string): [string, Buffer][] {
  const names = native().llistxattr(path).filter(keepXattr).sort();
  const out: [string, Buffer][] = [];
  for (const n of names) {
    const v = native().lgetxattr(path, n);
    if (v !== null) out.push([n, v]);
  }
  return out;
}

function sameXattrs(a: [string, Buffer][], b: [string, Buffer][]): boolean {
  return a.length === b.length && a.every(([k, v], i) => b[i]![0] === k && b[i]![1].equals(v));
}

function lstatBig(p: string): BigIntStats | undefined {
  return lstatSync(p, { bigint: true, throwIfNoEntry: false });
}

function sortedNames(p: string): string[] {
  return readdirSync(p).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function typeOf(st: BigIntStats): EntryType | 'socket' {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n));
}

/** Whether a path's own metadata (not its children) differs between two trees. */
function metaChanged(a: BigIntStats, b: BigIntStats, ap: string, bp: string): 'same' | 'mtime' | 'changed' {
  const t = typeOf(a);
  if (t !== typeOf(b) || (a.mode & 0o7777n) !== (b.mode & 0o7777n) || a.uid !== b.uid || a.gid !== b.gid) return 'changed';
  // nlink: a new hard link to an unchanged file must bring that file along (one inode).
  if (t === 'file' && (a.size !== b.size || a.nlink !== b.nlink)) return 'changed';
  if ((t === 'char' || t === 'block') && a.rdev !== b.rdev) return 'changed';
  if (t === 'symlink' && readlinkSync(ap) !== readlinkSync(bp)) return 'changed';
  if (!sameXattrs(xattrsOf(ap), xattrsOf(bp))) return 'changed';
  if (t !== 'dir' && a.mtimeNs !== b.mtimeNs) return 'changed';
  return t === 'dir' && a.mtimeNs !== b.mtimeNs ? 'mtime' : 'same';
}

/** One step of the walk: an entry to write, or a directory's end. */
type Item = { kind: 'entry'; rel: string; path: string; st: BigIntStats } | { kind: 'whiteout'; rel: string; st: BigIntStats } | { kind: 'opaque'; rel: string; st: BigIntStats };

/**
 * Directories are held back until something below them is written (parents before children),
 * or written at their end when they changed themselves (`own`). A directory that only changed
 * because runtime leftovers were made in it is dropped.
 */
interface PendingDir {
  rel: string;
  path: string;
  st: BigIntStats;
  /** Written regardless of children: new, or its metadata changed beyond mtime, or opaque. */
  own: boolean;
  /** Changed only in mtime (compare) or present in an overlay upper (copy-up). */
  touched: boolean;
  leftovers: boolean;
  written: boolean;
  opaque: boolean;
}

/** A tar entry to write: its header, then `size` bytes of the file at `path`. */
interface Entry {
  rel: string;
  path: string;
  head: Buffer;
  size: number;
  /** A small file's contents, read ahead. */
  data?: Promise<Buffer>;
}

/** How far the byte writer reads ahead of the walk's output: entries, and small-file bytes. */
const AHEAD = 64;
const AHEAD_BYTES = 4 << 20;

function shrank(rel: string): BerthError {
  return new BerthError('INTERNAL', `writing layer: /${rel} shrank while it was read`, { hint: 'stop (or pause) the container first' });
}

/** A whole small file, read on the thread pool (the file is opened here, closed when done). */
function readSmall(path: string, size: number, rel: string): Promise<Buffer> {
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(size);
  return new Promise((resolve, reject) => {
    const step = (off: number): void =>
      read(fd, buf, off, size - off, off, (e, n) => {
        if (!e && n > 0 && off + n < size) return step(off + n);
        closeSync(fd);
        if (e) reject(e);
        else if (n === 0) reject(shrank(rel));
        else resolve(buf);
      });
    step(0);
  });
}

/** A tar stream of the changes; see the module comment. */
export function writeLayer(opts: WriteLayerOptions): Readable {
  if (opts.mode !== 'overlay' && opts.mode !== 'compare') throw new BerthError('INVALID_ARGUMENT', `layer writer: mode must be 'overlay' or 'compare'`);
  const root = opts.dir.replace(/\/+$/, '');
  const base = opts.base?.replace(/\/+$/, '');
  const epoch = opts.epoch;
  if (epoch !== undefined && !(Number.isInteger(epoch) && epoch >= 0)) throw new BerthError('INVALID_ARGUMENT', `layer writer: epoch ${epoch} is not a whole number of seconds`);
  const exclude = opts.exclude ?? (() => false);
  const keepLeftovers = opts.keepRuntimeLeftovers === true;
  const signal = opts.signal;

  const mtimeOf = (st: BigIntStats) => {
    const s = Number(st.mtimeNs / 1_000_000_000n);
    return epoch !== undefined && s > epoch ? epoch : s;
  };
  const links = new Map<string, string>();
  const stack: PendingDir[] = [];

  function header(rel: string, path: string, st: BigIntStats): TarHeader | undefined {
    const t = typeOf(st);
    if (t === 'socket') return undefined;
    const h: TarHeader = { name: t === 'dir' ? rel + '/' : rel, type: t, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: 0, mtime: mtimeOf(st) };
    if (t === 'file') {
      const id = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1n ? links.get(id) : undefined;
      if (first !== undefined) {
        h.type = 'link';
        h.linkname = first;
      } else {
        if (st.nlink > 1n) links.set(id, rel);
        h.size = Number(st.size);
      }
    } else if (t === 'symlink') h.linkname = readlinkSync(path);
    else if (t === 'char' || t === 'block') {
      h.devmajor = major(st.rdev);
      h.devminor = minor(st.rdev);
    }
    const x = xattrsOf(path);
    if (x.length > 0 && h.type !== 'link') h.xattrs = x;
    return h;
  }

  function whiteoutHeader(rel: string, st: BigIntStats, opaque: boolean): TarHeader {
    const i = rel.lastIndexOf('/');
    const name = opaque ? `${rel}/${WHITEOUT_OPAQUE}` : i === -1 ? WHITEOUT_PREFIX + rel : `${rel.slice(0, i)}/${WHITEOUT_PREFIX}${rel.slice(i + 1)}`;
    return { name, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: mtimeOf(st) };
  }

  /** The walk, as items in tar order (pending parents flushed first). */
  function* walk(): Generator<Item> {
    function* flush(): Generator<Item> {
      for (const d of stack) {
        if (d.written) continue;
        d.written = true;
        yield { kind: 'entry', rel: d.rel, path: d.path, st: d.st };
        if (d.opaque) yield { kind: 'opaque', rel: d.rel, st: d.st };
      }
    }
    function* dir(rel: string, inBase: boolean): Generator<Item> {
      const here = rel ? `${root}/${rel}` : root;
      const names = sortedNames(here);
      let all = names;
      const baseHere = base !== undefined && inBase ? (rel ? `${base}/${rel}` : base) : undefined;
      const baseNames = baseHere !== undefined ? new Set(sortedNames(baseHere)) : undefined;
      if (baseNames) {
        const have = new Set(names);
        all = [...names, ...[...baseNames].filter((n) => !have.has(n))].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      }
      for (const name of all) {
        if (signal?.aborted) throw new BerthError('ABORTED', 'writing layer: aborted');
        const r = rel ? `${rel}/${name}` : name;
        if (exclude(r)) continue;
        const p = `${here}/${name}`;
        const st = lstatBig(p);
        const bst = baseNames?.has(name) ? lstatBig(`${baseHere}/${name}`) : undefined;
        if (!st) {
          // compare: gone from the new tree
          if (bst) {
            yield* flush();
            yield { kind: 'whiteout', rel: r, st: bst };
          }
          continue;
        }
        if (opts.mode === 'overlay' && st.isCharacterDevice() && st.rdev === 0n) {
          yield* flush();
          yield { kind: 'whiteout', rel: r, st };
          continue;
        }
        if (!keepLeftovers && runtimeLeftover(r, p, st, bst !== undefined)) {
          const parent = stack[stack.length - 1];
          if (parent) parent.leftovers = true;
          continue;
        }
        const change = bst ? metaChanged(st, bst, p, `${baseHere}/${name}`) : 'changed';
        if (st.isDirectory()) {
          const opaque = opts.mode === 'overlay' && native().lgetxattr(p, 'trusted.overlay.opaque')?.toString() === 'y';
          const sameType = bst?.isDirectory() === true;
          const d: PendingDir = {
            rel: r,
            path: p,
            st,
            own: opaque || (opts.mode === 'compare' && (!sameType || change === 'changed')),
            touched: opts.mode === 'overlay' || change === 'mtime',
            leftovers: false,
            written: false,
            opaque,
          };
          stack.push(d);
          if (d.own) yield* flush();
          yield* dir(r, sameType && !opaque);
          stack.pop();
          // Written when nothing below it was: changed itself (new, mode, owner, an overlay
          // copy-up) unless the change was only runtime leftovers being made in it.
          if (!d.written && d.touched && !d.leftovers) {
            stack.push(d);
            yield* flush();
            stack.pop();
          }
          continue;
        }
        if (change === 'same') continue;
        yield* flush();
        yield { kind: 'entry', rel: r, path: p, st };
      }
    }
    yield* dir('', base !== undefined);
  }

  /** The walk as tar entries: header bytes, and the file to read after them (size > 0). */
  function* entries(): Generator<Entry> {
    for (const item of walk()) {
      if (item.kind !== 'entry') {
        yield { rel: item.rel, path: '', head: encodeTarHeader(whiteoutHeader(item.rel, item.st, item.kind === 'opaque')), size: 0 };
        continue;
      }
      const h = header(item.rel, item.path, item.st);
      if (h) yield { rel: item.rel, path: item.path, head: encodeTarHeader(h), size: h.type === 'file' ? h.size : 0 };
    }
  }

  /**
   * The tar bytes in CHUNK-sized buffers, filled in place. The walk runs up to AHEAD entries
   * ahead of the output, and the small files among them are read concurrently on the thread
   * pool (in name order they sit all over the disk: one read at a time waits for each); big
   * files are read straight into the output chunks, the next while this one is consumed.
   */
  async function* bytes(): AsyncGenerator<Buffer> {
    let out = Buffer.allocUnsafe(CHUNK);
    let pos = 0;
    function* put(b: Buffer): Generator<Buffer> {
      for (let off = 0; off < b.length; ) {
        const n = b.copy(out, pos, off);
        pos += n;
        off += n;
        if (pos === CHUNK) {
          yield out;
          out = Buffer.allocUnsafe(CHUNK);
          pos = 0;
        }
      }
    }
    const it = entries();
    const ahead: Entry[] = [];
    let aheadBytes = 0;
    let walked = false;
    try {
      for (;;) {
        while (!walked && ahead.length < AHEAD && aheadBytes < AHEAD_BYTES) {
          const r = it.next();
          if (r.done) walked = true;
          else {
            const e = r.value;
            if (e.size > 0 && e.size <= SMALL_FILE) {
              e.data = readSmall(e.path, e.size, e.rel);
              e.data.catch(() => {}); // awaited in turn below
              aheadBytes += e.size;
            }
            ahead.push(e);
          }
        }
        const e = ahead.shift();
        if (!e) break;
        yield* put(e.head);
        if (e.size === 0) continue;
        if (e.data) {
          aheadBytes -= e.size;
          yield* put(await e.data);
        } else {
          const fh = await open(e.path, 'r');
          try {
            for (let done = 0; done < e.size; ) {
              const { bytesRead } = await fh.read(out, pos, Math.min(CHUNK - pos, e.size - done), done);
              if (bytesRead === 0) throw shrank(e.rel);
              pos += bytesRead;
              done += bytesRead;
              if (pos === CHUNK) {
                yield out;
                out = Buffer.allocUnsafe(CHUNK);
                pos = 0;
              }
            }
          } finally {
            await fh.close();
          }
        }
        yield* put(padding(e.size));
      }
    } finally {
      // Stopped early: let the reads in flight finish (they close their files themselves).
      await Promise.allSettled(ahead.map((e) => e.data));
    }
    yield* put(ZERO);
    if (pos > 0) yield out.subarray(0, pos);
  }

  const out = Readable.from(bytes(), { objectMode: false, highWaterMark: 1 << 20 });
  if (signal) {
    const onAbort = () => out.destroy(new BerthError('ABORTED', 'writing layer: aborted'));
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      out.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }
  return out;
}
