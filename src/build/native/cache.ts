/**
 * The built-in builder's cache under `<root>/cache`, for `system df` and `system prune`:
 *
 *   steps/<key>.json   one record per layer step: the layer it made (descriptor, diff id, time)
 *   mounts/<id>/       RUN --mount=type=cache directories
 *   mnt/, tmp/         per-build mount points and scratch (named with the builder's pid)
 *
 * Records only point at layers: a record whose blob is gone (store gc) is a cache miss, and
 * prune removes it. Cache mounts are never pruned while a build runs.
 */
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from '../../oci/types.js';
import { pidAlive } from '../../store/lock.js';
import type { ContentStore } from '../../store/store.js';

export interface BuildCacheUsage {
  /** Step records, and how many of them point at a layer the store still has. */
  records: number;
  live: number;
  /** Bytes of the layers the live records point at (shared with images that use them). */
  layerBytes: number;
  /** Cache mount directories and their bytes. */
  mounts: number;
  mountBytes: number;
}

async function du(p: string): Promise<number> {
  let st;
  try {
    st = await lstat(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const c of await readdir(p).catch(() => [] as string[])) n += await du(join(p, c));
  return n;
}

async function records(root: string): Promise<{ file: string; layer?: Descriptor }[]> {
  const dir = join(root, 'cache', 'steps');
  const out = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (!f.endsWith('.json')) continue;
    const rec = await readFile(join(dir, f), 'utf8').then((t) => JSON.parse(t) as { layer?: Descriptor }, () => ({}) as { layer?: Descriptor });
    out.push({ file: join(dir, f), ...(rec.layer ? { layer: rec.layer } : {}) });
  }
  return out;
}

/** Whether a build is running on this root (a live pid among its scratch directories). */
export async function buildRunning(root: string): Promise<boolean> {
  for (const d of ['mnt', 'tmp']) {
    for (const name of await readdir(join(root, 'cache', d)).catch(() => [] as string[])) {
      const pid = Number(/^(\d+)-/.exec(name)?.[1]);
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) return true;
    }
  }
  return false;
}

export async function buildCacheUsage(root: string, store: ContentStore): Promise<BuildCacheUsage> {
  const recs = await records(root);
  let live = 0;
  let layerBytes = 0;
  for (const r of recs) {
    if (r.layer && (await store.exists(r.layer))) {
      live++;
      layerBytes += r.layer.size;
    }
  }
  const mountsDir = join(root, 'cache', 'mounts');
  const mounts = await readdir(mountsDir).catch(() => [] as string[]);
  return { records: recs.length, live, layerBytes, mounts: mounts.length, mountBytes: await du(mountsDir) };
}

/**
 * Remove records whose layer is gone; with `all`, every record and (when no build runs) every
 * cache mount. Returns what was removed.
 */
export async function pruneBuildCache(root: string, store: ContentStore, opts: { all?: boolean } = {}): Promise<{ records: number; mounts: number; bytes: number }> {
  let removed = 0;
  for (const r of await records(root)) {
    if (opts.all || !r.layer || !(await store.exists(r.layer))) {
      await rm(r.file, { force: true });
      removed++;
    }
  }
  let mounts = 0;
  let bytes = 0;
  if (opts.all && !(await buildRunning(root))) {
    const dir = join(root, 'cache', 'mounts');
    for (const m of await readdir(dir).catch(() => [] as string[])) {
      bytes += await du(join(dir, m));
      await rm(join(dir, m), { recursive: true, force: true });
      mounts++;
    }
  }
  return { records: removed, mounts, bytes };
}
