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
