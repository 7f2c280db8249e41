/**
 * The built-in builder's cache under `<root>/cache`, for `system df`, `system prune`,
 * `builder prune` and gc:
 *
 *   steps/<key>.json   one record per layer step: the layer it made (descriptor, diff id, time)
 *   mounts/<id>/       RUN --mount=type=cache directories
 *   holds/<pid>-<r>    the cache mounts a running build holds (one name a line; a dead pid's
 *                      file holds nothing and is removed)
 *   mnt/, tmp/         per-build mount points and scratch (named with the builder's pid)
 *
 * Records' layers are gc roots (`cacheRoots`): image prune and rmi never delete a blob a record
 * points at; only removing the record (system prune, builder prune) lets gc take it. A build
 * holds the cached layers it uses in its store lease, so a prune while it runs cannot take them
 * from under it either. Cache mounts held by a running build are never removed.
 */
import { randomBytes } from 'node:crypto';
import { appendFile, lstat, mkdir, readdir, readFile, rm, unlink } from 'node:fs/promises';
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
  /** Of those, the bytes no image or container uses (what a cache prune gives back). */
  exclusiveBytes: number;
  /** Cache mount directories and their bytes; how many a running build holds, and the bytes of the others. */
  mounts: number;
  mountBytes: number;
  mountsHeld: number;
  reclaimableMountBytes: number;
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

/** The layers cache records point at: roots that gc keeps (image prune, rmi). */
export async function cacheRoots(root: string): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  for (const r of await records(root)) if (r.layer) out.push(r.layer);
  return out;
}

/**
 * Hold the cache mount `name` (its directory under mounts/) for this process: until `release`
 * (or this process's death) no prune removes it.
 */
export async function holdCacheMount(root: string, name: string): Promise<() => Promise<void>> {
  const dir = join(root, 'cache', 'holds');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${process.pid}-${randomBytes(4).toString('hex')}`);
  await appendFile(file, `${name}\n`);
  return () => unlink(file).catch(() => {});
}

/** Cache mounts held by live processes; the hold files of dead ones are removed. */
export async function heldCacheMounts(root: string): Promise<Set<string>> {
  const dir = join(root, 'cache', 'holds');
  const held = new Set<string>();
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const pid = Number(f.split('-')[0]);
    if (!(Number.isInteger(pid) && pid > 0 && pidAlive(pid))) {
      await unlink(join(dir, f)).catch(() => {});
      continue;
    }
    for (const line of (await readFile(join(dir, f), 'utf8').catch(() => '')).split('\n')) if (line) held.add(line);
  }
  return held;
}

/**
 * What the cache holds. `used` (the digests images and containers reach) splits the record
 * layers' bytes into shared and exclusive ones.
 */
export async function buildCacheUsage(root: string, store: ContentStore, used: ReadonlySet<string> = new Set()): Promise<BuildCacheUsage> {
  const recs = await records(root);
  let live = 0;
  let layerBytes = 0;
  let exclusiveBytes = 0;
  const seen = new Set<string>();
  for (const r of recs) {
    if (r.layer && (await store.exists(r.layer))) {
      live++;
      if (seen.has(r.layer.digest)) continue;
      seen.add(r.layer.digest);
      layerBytes += r.layer.size;
      if (!used.has(r.layer.digest)) exclusiveBytes += r.layer.size;
    }
  }
  const mountsDir = join(root, 'cache', 'mounts');
  const mounts = await readdir(mountsDir).catch(() => [] as string[]);
  const held = await heldCacheMounts(root);
  let mountBytes = 0;
  let reclaimableMountBytes = 0;
  for (const m of mounts) {
    const n = await du(join(mountsDir, m));
    mountBytes += n;
    if (!held.has(m)) reclaimableMountBytes += n;
  }
  return { records: recs.length, live, layerBytes, exclusiveBytes, mounts: mounts.length, mountBytes, mountsHeld: mounts.filter((m) => held.has(m)).length, reclaimableMountBytes };
}

export interface BuildCachePruneResult {
  /** Records removed, and the layers they pointed at (for the gc that follows). */
  records: number;
  layers: Descriptor[];
  /** Cache mounts removed (names), and their bytes. */
  mounts: string[];
  bytes: number;
  /** Cache mounts left because a running build holds them. */
  held: string[];
}

/**
 * Remove records whose layer is gone; with `all`, every record and every cache mount no
 * running build holds. With `dryRun`, only report. The layers of removed records become
 * garbage for the next gc unless an image uses them.
 */
export async function pruneBuildCache(root: string, store: ContentStore, opts: { all?: boolean; dryRun?: boolean } = {}): Promise<BuildCachePruneResult> {
  let removed = 0;
  const layers: Descriptor[] = [];
  for (const r of await records(root)) {
    if (opts.all || !r.layer || !(await store.exists(r.layer))) {
      if (!opts.dryRun) await rm(r.file, { force: true });
      if (r.layer) layers.push(r.layer);
      removed++;
    }
  }
  const mounts: string[] = [];
  const heldNames: string[] = [];
  let bytes = 0;
  if (opts.all) {
    const held = await heldCacheMounts(root);
    const dir = join(root, 'cache', 'mounts');
    for (const m of await readdir(dir).catch(() => [] as string[])) {
      if (held.has(m)) {
        heldNames.push(m);
        continue;
      }
      bytes += await du(join(dir, m));
      if (!opts.dryRun) await rm(join(dir, m), { recursive: true, force: true });
      mounts.push(m);
    }
  }
  return { records: removed, layers, mounts, bytes, held: heldNames };
}
