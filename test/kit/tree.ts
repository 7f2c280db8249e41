import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A listing of a directory tree (path, type, mode, size, content hash or link target) to compare
 * before and after an operation: "the store exactly as it was before".
 */
export async function snapshotTree(dir: string, opts: { skip?: (rel: string) => boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    const full = join(dir, rel);
    let st;
    try {
      st = await lstat(full);
    } catch {
      return;
    }
    if (rel && opts.skip?.(rel)) return;
    if (st.isDirectory()) {
      if (rel) out.push(`${rel}/ d ${(st.mode & 0o7777).toString(8)}`);
      for (const n of (await readdir(full)).sort()) await walk(rel ? `${rel}/${n}` : n);
    } else if (st.isSymbolicLink()) {
      out.push(`${rel} l -> ${await readlink(full)}`);
    } else if (st.isFile()) {
      const h = createHash('sha256').update(await readFile(full)).digest('hex').slice(0, 16);
      out.push(`${rel} f ${(st.mode & 0o7777).toString(8)} ${st.size} ${h}`);
    } else {
      out.push(`${rel} ? ${st.mode.toString(8)}`);
    }
  };
  await walk('');
  return out;
}

/**
 * A full listing of a tree for "identical tree" checks: path, type, mode (setuid/setgid/sticky
 * included), owner, and per type size + content hash + file mtime (seconds) + hard-link group,
 * link target, or device number; plus security.capability and user.* xattrs.
 */
export async function treeListing(root: string): Promise<string[]> {
  const { native } = await import('../../src/archive/native.js');
  const out: string[] = [];
  const firstOfInode = new Map<number, string>();
  const walk = async (rel: string) => {
    const p = rel ? join(root, rel) : root;
    const st = await lstat(p);
    const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : st.isFIFO() ? 'p' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : '?';
    let extra = '';
    if (type === 'l') extra = `-> ${await readlink(p)}`;
    else if (type === 'f') {
      const h = createHash('sha256').update(await readFile(p)).digest('hex').slice(0, 16);
      let group = '';
      if (st.nlink > 1) {
        const first = firstOfInode.get(st.ino);
        if (first === undefined) firstOfInode.set(st.ino, rel);
        group = ` nlink=${st.nlink} same-inode-as=/${first ?? rel}`;
      }
      extra = `size=${st.size} sha=${h} mtime=${Math.floor(st.mtimeMs / 1000)}${group}`;
    } else if (type === 'c' || type === 'b') extra = `rdev=${st.rdev}`;
    const xattrs = type === 'l' ? [] : native().llistxattr(p).filter((n) => n === 'security.capability' || (n.startsWith('user.') && !n.startsWith('user.overlay.'))).sort();
    const x = xattrs.map((n) => ` ${n}=${native().lgetxattr(p, n)?.toString('hex')}`).join('');
    out.push(`/${rel} ${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${extra}${x}`);
    if (type === 'd') for (const n of (await readdir(p)).sort()) await walk(rel ? `${rel}/${n}` : n);
  };
  await walk('');
  return out;
}
