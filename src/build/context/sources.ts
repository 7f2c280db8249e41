/**
 * Finding COPY/ADD sources in a tree (the build context, or another stage's rootfs) safely:
 * the source path is cleaned against the tree's root (`../../etc/x` is `/etc/x` inside the
 * tree, never the host's), symlinks on the way are resolved inside the tree, wildcards match
 * per path segment, and ignored context paths are invisible. Each match gets a content digest
 * (path, type, mode, link target, file bytes; not mtimes) for the step's cache key.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { secureJoin } from '../../run/rootfs.js';
import type { PathFilter } from './ignore.js';

export interface SourceMatch {
  /** Tree-relative path, `/`-separated, no leading slash ('' for the root). */
  rel: string;
  /** Host path. */
  host: string;
  isDir: boolean;
}

const WILDCARD = /[*?[]/;

export function hasWildcard(p: string): boolean {
  return WILDCARD.test(p);
}

function segmentRegExp(seg: string): RegExp {
  let re = '^';
  for (let i = 0; i < seg.length; i++) {
    const ch = seg[i]!;
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '[') {
      const end = seg.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = seg.slice(i + 1, end);
        if (cls.startsWith('!') || cls.startsWith('^')) cls = `^${cls.slice(1)}`;
        re += `[${cls}]`;
        i = end;
      }
    } else if (ch === '\\' && i + 1 < seg.length) re += seg[++i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/**
 * The matches of one source inside `root`: the path itself, or every path its wildcards match
 * (sorted). Ignored paths (`ignore`, context only) do not exist.
 */
export async function findSources(root: string, src: string, ignore?: PathFilter): Promise<SourceMatch[]> {
  const clean = posix.normalize(`/${src}`).replace(/\/+$/, '') || '/';
  const visible = (rel: string) => !ignore || rel === '' || !ignore.ignores(rel);
  if (!hasWildcard(clean)) {
    const host = await secureJoin(root, clean);
    const rel = host === root ? '' : host.slice(root.length + 1);
    if (!visible(rel)) return [];
    try {
      const st = await lstat(host);
      return [{ rel, host, isDir: st.isDirectory() }];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw e;
    }
  }
  const segs = clean.split('/').filter(Boolean);
  let cur: { rel: string; host: string }[] = [{ rel: '', host: root }];
  for (const seg of segs) {
    const next: { rel: string; host: string }[] = [];
    for (const c of cur) {
      if (!hasWildcard(seg)) {
        const host = await secureJoin(root, `${c.rel}/${seg}`);
        next.push({ rel: host === root ? '' : host.slice(root.length + 1), host });
        continue;
      }
      const re = segmentRegExp(seg);
      let names: string[];
      try {
        names = (await readdir(c.host)).sort();
      } catch {
        continue;
      }
      for (const n of names) if (re.test(n)) next.push({ rel: c.rel ? `${c.rel}/${n}` : n, host: join(c.host, n) });
    }
    cur = next;
  }
  const out: SourceMatch[] = [];
  for (const c of cur) {
    if (!visible(c.rel)) continue;
    try {
      const st = await lstat(c.host);
      out.push({ rel: c.rel, host: c.host, isDir: st.isDirectory() });
    } catch {
      /* vanished or dangling */
    }
  }
  return out;
}

/** Content digest of a match (a directory: its visible tree), for cache keys. */
export async function hashSource(m: SourceMatch, ignore?: PathFilter, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  const visit = async (host: string, rel: string, name: string): Promise<void> => {
    signal?.throwIfAborted();
    const st = await lstat(host);
    h.update(`${name}\0${st.mode}\0${st.uid}\0${st.gid}\0`);
    if (st.isSymbolicLink()) h.update(`l${await readlink(host)}\0`);
    else if (st.isFile()) {
      h.update(`f${st.size}\0`);
      await pipeline(createReadStream(host), async function* (src) {
        for await (const chunk of src) h.update(chunk as Buffer);
      });
    } else if (st.isDirectory()) {
      for (const n of (await readdir(host)).sort()) {
        const r = rel ? `${rel}/${n}` : n;
        if (ignore && ignore.ignores(r)) continue;
        await visit(join(host, n), r, `${name}/${n}`);
      }
    }
  };
  await visit(m.host, m.rel, '.');
  return h.digest('hex');
}
