/**
 * COPY and ADD into a mounted rootfs, without a container: docker's rules for where things
 * land (a directory source copies its contents; a destination ending in `/`, several sources or
 * an existing directory take files by their base name), owners (context files as 0:0, files from
 * another stage keep theirs, `--chown` wins), modes (kept, `--chmod` wins), missing parent
 * directories created (owned by the `--chown` user). Every destination is resolved inside the
 * rootfs: symlinks in it are followed within it, never out.
 */
import { chmod, copyFile, lchown, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join, posix } from 'node:path';
import { BerthError } from '../../errors.js';
import { secureJoin } from '../../run/rootfs.js';
import type { PathFilter } from '../context/ignore.js';
import type { SourceMatch } from '../context/sources.js';

export interface Owner {
  uid: number;
  gid: number;
}

export interface CopyOptions {
  /** `--chown` resolved; undefined keeps the source owner (or 0:0 for the context). */
  chown?: Owner;
  /** The owner of context files when there is no --chown (0:0). */
  contextOwner?: boolean;
  /** `--exclude` patterns, matched against paths relative to each source (and its base name). */
  exclude?: PathFilter;
  /** `--parents`: each source keeps its path (relative to the context or stage root) under the destination. */
  parents?: boolean;
  /** `--chmod` as a number. */
  chmod?: number;
  ignore?: PathFilter;
  signal?: AbortSignal;
}

/** mkdir -p inside the rootfs; directories created get `owner` and 0755. Returns the host path. */
export async function mkdirAllInRoot(rootfs: string, path: string, owner: Owner | undefined): Promise<string> {
  const parts = posix.normalize(`/${path}`).split('/').filter(Boolean);
  let cur = '/';
  for (const p of parts) {
    cur = posix.join(cur, p);
    const host = await secureJoin(rootfs, cur);
    let st;
    try {
      st = await lstat(host);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st && st.isDirectory()) continue;
    if (st) throw new BerthError('INVALID_ARGUMENT', `cannot create directory ${cur}: a file exists there`);
    await mkdir(host, { mode: 0o755 });
    await chmod(host, 0o755);
    if (owner) await lchown(host, owner.uid, owner.gid);
  }
  return secureJoin(rootfs, path);
}

async function isDirInRoot(rootfs: string, path: string): Promise<boolean> {
  try {
    return (await lstat(await secureJoin(rootfs, path))).isDirectory();
  } catch {
    return false;
  }
}

/** Copy one tree entry (recursively) from `src` to the host path `dst`. */
async function copyEntry(src: string, dst: string, rel: string | undefined, o: CopyOptions, sub = ''): Promise<void> {
  o.signal?.throwIfAborted();
  const st = await lstat(src);
  const uid = o.chown?.uid ?? (o.contextOwner ? 0 : st.uid);
  const gid = o.chown?.gid ?? (o.contextOwner ? 0 : st.gid);
  const perm = o.chmod ?? st.mode & 0o7777;
  let existing;
  try {
    existing = await lstat(dst);
  } catch {
    /* absent */
  }
  if (st.isDirectory()) {
    if (existing && !existing.isDirectory()) await rm(dst, { force: true });
    if (!existing || !existing.isDirectory()) await mkdir(dst);
    for (const n of (await readdir(src)).sort()) {
      const r = rel === undefined ? undefined : rel ? `${rel}/${n}` : n;
      if (r !== undefined && o.ignore?.ignores(r)) continue;
      const s = sub ? `${sub}/${n}` : n;
      if (o.exclude?.ignores(s)) continue;
      await copyEntry(join(src, n), join(dst, n), r, o, s);
    }
    await lchown(dst, uid, gid);
    await chmod(dst, perm);
    await lutimes(dst, st.atime, st.mtime);
    return;
  }
  if (existing) await rm(dst, { recursive: true, force: true });
  if (st.isSymbolicLink()) {
    await symlink(await readlink(src), dst);
    await lchown(dst, uid, gid);
    await lutimes(dst, st.atime, st.mtime);
    return;
  }
  if (!st.isFile()) throw new BerthError('UNSUPPORTED', `cannot copy ${rel ?? src}: not a regular file, directory or symlink`);
  await copyFile(src, dst);
  await lchown(dst, uid, gid);
  await chmod(dst, perm);
  await lutimes(dst, st.atime, st.mtime);
}

/**
 * Copy the matched sources to `dest` (absolute, inside the rootfs). `destIsDir` when the
 * destination ended in `/` or there are several sources.
 */
export async function copyInto(rootfs: string, all: readonly SourceMatch[], dest: string, destIsDir: boolean, o: CopyOptions): Promise<void> {
  const parentOwner = o.chown;
  const matches = all.filter((m) => m.isDir || !o.exclude || !(o.exclude.ignores(m.rel) || o.exclude.ignores(posix.basename(m.rel))));
  for (const m of matches) {
    if (o.parents) {
      const under = posix.join(dest, m.isDir ? m.rel : posix.dirname(m.rel));
      if (m.isDir) await copyEntry(m.host, await mkdirAllInRoot(rootfs, under, parentOwner), o.ignore ? m.rel : undefined, o);
      else {
        await mkdirAllInRoot(rootfs, under, parentOwner);
        await copyEntry(m.host, await secureJoin(rootfs, posix.join(under, posix.basename(m.rel))), o.ignore ? m.rel : undefined, o);
      }
      continue;
    }
    if (m.isDir) {
      const dir = await mkdirAllInRoot(rootfs, dest, parentOwner);
      await copyEntry(m.host, dir, o.ignore ? m.rel : undefined, o);
      continue;
    }
    let target = dest;
    if (destIsDir || (await isDirInRoot(rootfs, dest))) target = posix.join(dest, posix.basename(m.rel || m.host));
    await mkdirAllInRoot(rootfs, posix.dirname(target), parentOwner);
    await copyEntry(m.host, await secureJoin(rootfs, target), o.ignore ? m.rel : undefined, o);
  }
}

/** Write a heredoc as a file (mode 0644, or --chmod) at `dest`, or into it when it is a directory. */
export async function writeHeredocFile(rootfs: string, name: string, data: string, dest: string, destIsDir: boolean, o: CopyOptions): Promise<void> {
  let target = dest;
  if (destIsDir || (await isDirInRoot(rootfs, dest))) target = posix.join(dest, name);
  await mkdirAllInRoot(rootfs, posix.dirname(target), o.chown);
  const host = await secureJoin(rootfs, target);
  await rm(host, { recursive: true, force: true });
  await writeFile(host, data);
  await chmod(host, o.chmod ?? 0o644);
  await lchown(host, o.chown?.uid ?? 0, o.chown?.gid ?? 0);
}

/** Whether a file is an archive ADD extracts (tar, possibly gzip/bzip2/xz/zstd compressed). */
export async function isArchive(path: string): Promise<boolean> {
  const head = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const s = createReadStream(path, { start: 0, end: 511 });
    s.on('data', (c) => {
      chunks.push(c as Buffer);
      n += (c as Buffer).length;
    });
    s.on('error', reject);
    s.on('end', () => resolve(Buffer.concat(chunks, n)));
  });
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return true;
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return true;
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return true;
  return head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
}
