/**
 * Operations that span rooms: removing images that containers may use, whole-root garbage
 * collection, disk usage and environment information. The CLI calls these; they never print.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Descriptor } from './oci/types.js';
import { walk } from './oci/walk.js';
import { check, gc, reachable, type CheckResult, type GcResult } from './store/gc.js';
import { listImageSummaries, removeImage } from './store/images.js';
import type { ContentStore } from './store/store.js';

export interface ContainerRef {
  id: string;
  name?: string;
  /** Manifest digest the container ran (for an index, the selected platform's manifest). */
  imageDigest?: string;
  snapshotKey?: string;
  chainId?: string;
}

/** What containers hold: read through the run room's own records (`Containers.list`). */
export async function containerRefs(root: string): Promise<ContainerRef[]> {
  const { Containers } = await import('./run/containers.js');
  const containers = await Containers.open(root);
  return (await containers.list()).map(({ record: r }) => ({
    id: r.id,
    name: r.name,
    imageDigest: r.image.digest,
    snapshotKey: r.snapshotKey,
    chainId: r.chainId,
  }));
}

/** `rmi`: refuse while a container uses the image unless forced. */
export async function removeImages(store: ContentStore, names: readonly string[], opts: { force?: boolean } = {}) {
  const refs = await containerRefs(store.root);
  const inUse = async (digest: string) => {
    // A container records the manifest it ran; the name may point at an index above it.
    const size = await store.blobSize(digest as Descriptor['digest']);
    const under = new Set<string>([digest]);
    if (size !== undefined) {
      const g = await walk(store, { mediaType: '', digest: digest as Descriptor['digest'], size }, { allPlatforms: true, tolerateMissing: true }).catch(() => undefined);
      for (const n of g?.nodes ?? []) under.add(n.desc.digest);
    }
    const c = refs.find((r) => r.imageDigest && under.has(r.imageDigest));
    return c ? (c.name ?? c.id.slice(0, 12)) : undefined;
  };
  const results = [];
  for (const n of names) results.push(await removeImage(store, n, { ...(opts.force ? { force: true } : {}), inUse }));
  return results;
}

/** Roots that containers hold against gc. */
async function containerRoots(store: ContentStore): Promise<Descriptor[]> {
  const out: Descriptor[] = [];
  for (const c of await containerRefs(store.root)) {
    const d = c.imageDigest;
    if (!d || !/^sha256:[a-f0-9]{64}$/.test(d)) continue;
    const size = await store.blobSize(d as Descriptor['digest']);
    // Containers record the manifest they ran; walked from there, its config and layers stay.
    if (size !== undefined) out.push({ mediaType: '', digest: d as Descriptor['digest'], size });
  }
  return out;
}

/** Collect unreferenced blobs (keeping what containers use). */
export async function pruneContent(store: ContentStore, opts: { dryRun?: boolean; signal?: AbortSignal } = {}): Promise<GcResult> {
  return gc(store, { extraRoots: await containerRoots(store), ...opts });
}

export async function checkStore(store: ContentStore, opts: { signal?: AbortSignal } = {}): Promise<CheckResult> {
  return check(store, opts);
}

async function du(path: string, limit = 2_000_000): Promise<number> {
  let total = 0;
  let seen = 0;
  const walk = async (p: string): Promise<void> => {
    if (++seen > limit) return;
    const st = await stat(p).catch(() => undefined);
    if (!st) return;
    total += st.isDirectory() ? 0 : st.blocks * 512 || st.size;
    if (st.isDirectory()) for (const n of await readdir(p).catch(() => [] as string[])) await walk(join(p, n));
  };
  // lstat semantics would be better for snapshot trees; stat of links counts their targets at most once here.
  await walk(path);
  return total;
}

export interface DiskUsage {
  images: { count: number; size: number; reclaimable: number };
  containers: { count: number; size: number };
  snapshots: { size: number };
  ingest: { size: number };
  buildCache: { size: number };
}

/** `system df`. */
export async function diskUsage(store: ContentStore): Promise<DiskUsage> {
  const rows = await listImageSummaries(store);
  const keep = await reachable(store, await containerRoots(store));
  let all = 0;
  let reclaimable = 0;
  for (const d of await store.listBlobs()) {
    const s = (await store.blobSize(d)) ?? 0;
    all += s;
    if (!keep.has(d)) reclaimable += s;
  }
  const containers = await containerRefs(store.root);
  return {
    images: { count: rows.length, size: all, reclaimable },
    containers: { count: containers.length, size: await du(join(store.root, 'containers')) },
    snapshots: { size: await du(join(store.root, 'snapshots')) },
    ingest: { size: await du(store.ingestDir) },
    buildCache: { size: await du(join(store.root, 'cache')) },
  };
}

export interface SystemInfo {
  root: string;
  store: { images: number; blobs: number; bytes: number; layout: string };
  runc: { found: boolean; version?: string; warning?: string };
  buildctl: { found: boolean; version?: string };
  kernel: string;
  node: string;
  platform: string;
}

/** `info`: where the store is, how big, and which runtimes were found. */
export async function systemInfo(store: ContentStore, signal?: AbortSignal): Promise<SystemInfo> {
  const { release } = await import('node:os');
  const { formatPlatform, hostPlatform } = await import('./oci/platform.js');
  const { Buildctl } = await import('./build/buildctl.js');
  const blobs = await store.listBlobs();
  let bytes = 0;
  for (const d of blobs) bytes += (await store.blobSize(d)) ?? 0;
  const images = (await store.listImages()).length;
  const bk = await new Buildctl().version(signal);
  const runc = await runcInfo(store.root);
  return {
    root: store.root,
    store: { images, blobs: blobs.length, bytes, layout: store.contentDir },
    runc,
    buildctl: bk ? { found: true, version: bk } : { found: false },
    kernel: release(),
    node: process.version,
    platform: formatPlatform(hostPlatform()),
  };
}

async function runcInfo(root: string): Promise<SystemInfo['runc']> {
  const { Runc } = await import('./run/runc.js');
  try {
    const v = await new Runc({ root: join(root, 'runc') }).version();
    return { found: true, version: v.version, ...(v.warning ? { warning: v.warning } : {}) };
  } catch {
    return { found: false };
  }
}

/**
 * Remove unpacked layers that no tagged image and no container uses (tagged images keep their
 * unpacked chain so the next run starts warm, like containerd's unpacked images).
 */
export async function pruneSnapshots(store: ContentStore): Promise<string[]> {
  const { Snapshotter, chainIds } = await import('./snapshot/index.js');
  const { viewImage } = await import('./store/images.js');
  const snap = await Snapshotter.open(store.root);
  const inUse = new Set<string>();
  for (const r of await store.listImages()) {
    try {
      const v = await viewImage(store, r.desc);
      for (const c of chainIds(v.config.rootfs.diff_ids)) inUse.add(c);
    } catch {
      /* images of other platforms have nothing unpacked here */
    }
  }
  for (const c of await containerRefs(store.root)) {
    if (c.snapshotKey) inUse.add(c.snapshotKey);
    if (c.chainId) inUse.add(c.chainId);
  }
  return snap.gc(inUse);
}
