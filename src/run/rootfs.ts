/**
 * Path work inside a container's rootfs before runc sees it: every path resolved component by
 * component inside the root (lstat, symlinks re-rooted, never followed out), as
 * cyphar/filepath-securejoin and containerd's fs.RootPath do.
 */
import { chown, lstat, mkdir, readFile, readlink } from 'node:fs/promises';
import { lstatSync, mkdirSync, rmSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { BerthError } from '../errors.js';

const MAX_LINKS = 255;

/** The host path of `unsafe` inside `root`, with every symlink resolved inside the root. */
export async function secureJoin(root: string, unsafe: string): Promise<string> {
  let todo = posix.normalize('/' + unsafe).split('/').filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '.' ) continue;
    if (c === '..') {
      done.pop();
      continue;
    }
    const p = join(root, ...done, c);
    let st;
    try {
      st = await lstat(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        done.push(c, ...todo);
        todo = [];
        break;
      }
      throw e;
    }
    if (!st.isSymbolicLink()) {
      done.push(c);
      continue;
    }
    if (++links > MAX_LINKS) throw new BerthError('INVALID_ARGUMENT', `too many symlinks resolving ${unsafe} in the container`);
    const target = await readlink(p);
    if (target.startsWith('/')) done.length = 0;
    todo = [...target.split('/').filter(Boolean), ...todo];
  }
  return join(root, ...done);
}

/** Read a small file of the container (e.g. /etc/passwd) without leaving the root; undefined when absent. */
export async function readInRoot(root: string, path: string, cap = 4 * 1024 * 1024): Promise<string | undefined> {
  const p = await secureJoin(root, path);
  try {
    const st = await lstat(p);
    if (!st.isFile()) return undefined;
    if (st.size > cap) throw new BerthError('INVALID_ARGUMENT', `${path} in the container is larger than ${cap} bytes`);
    return await readFile(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Make `path` (absolute, inside the root) a real directory or file: symlinks on the way are
 * replaced by directories (a symlink at the last component by the wanted kind), missing
 * components created. Used for the runtime's own mount points (/proc, /dev, /etc/hosts, ...).
 * A dozen metadata calls on a fresh upper dir before every start: synchronous, as each takes
 * microseconds and an async round trip through the thread pool costs far more (run start time).
 */
export async function ensureMountpoint(root: string, path: string, kind: 'dir' | 'file'): Promise<void> {
  const parts = posix.normalize('/' + path).split('/').filter(Boolean);
  let cur = root;
  for (let i = 0; i < parts.length; i++) {
    const last = i === parts.length - 1;
    const want = last ? kind : 'dir';
    cur = join(cur, parts[i]!);
    let st: Stats | undefined;
    try {
      st = lstatSync(cur);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (st?.isSymbolicLink()) {
      unlinkSync(cur);
      st = undefined;
    } else if (st && want === 'dir' && !st.isDirectory()) {
      rmSync(cur, { force: true });
      st = undefined;
    } else if (st && want === 'file' && st.isDirectory()) {
      // a directory where a file is mounted: leave it to runc (it reports the mismatch)
      return;
    }
    if (!st) {
      if (want === 'dir') mkdirSync(cur, { mode: 0o755 });
      else writeFileSync(cur, '', { mode: 0o644 });
    }
  }
}

/** mkdir -p of `path` inside the root (symlinks resolved inside it), owned by uid:gid when created. */
export async function mkdirInRoot(root: string, path: string, uid: number, gid: number): Promise<void> {
  const parts = posix.normalize('/' + path).split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const p = await secureJoin(root, '/' + parts.slice(0, i).join('/'));
    try {
      const st = await lstat(p);
      if (!st.isDirectory()) throw new BerthError('INVALID_ARGUMENT', `working directory ${path}: /${parts.slice(0, i).join('/')} is not a directory in the container`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await mkdir(p, { mode: 0o755 });
      await chown(p, uid, gid);
    }
  }
}
