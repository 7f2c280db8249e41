/**
 * Operations that span rooms: docker's views of images (summaries, inspect, sizes), removing
 * images that containers may use, whole-root garbage collection, disk usage and environment
 * information. The CLI calls these; they never print.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { layerCompression } from './oci/mediatype.js';
import { Limiter } from './oci/limit.js';
import { formatPlatform, hostPlatform } from './oci/platform.js';
import { familiarName, familiarString, parseReference } from './oci/reference.js';
import type { Descriptor, Digest, Platform } from './oci/types.js';
import { walk } from './oci/walk.js';
import type { CheckResult, GcResult } from './store/gc.js';
/** gc, check and reachable load with the verbs that walk the whole store (listings never do). */
const gcRoom = () => import('./store/gc.js');
import { findImage, listImageEntries, removeImage, viewImage, type ImageView } from './store/images.js';
import type { ContentStore } from './store/store.js';
import type { ContainerInfo } from './run/containers.js';

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

/**
 * One row of `berth images`, with docker's keys (values raw: bytes, ISO times, full digests; the
 * CLI renders them as docker does).
 */
export interface ImageSummary {
  /** Docker's image id: the config digest of this host's image (else the root digest). */
  ID: Digest;
  /** Familiar repository (`alpine`, `host:5000/app`), `<none>` when untagged. */
  Repository: string;
  Tag: string;
  /** The root (manifest or index) digest: what the name points at and what a registry calls it. */
  Digest: Digest;
  CreatedAt?: string;
  /** Unpacked size, as docker shows it: the uncompressed layers. */
  Size: number;
  /** Bytes in the content store (manifest, config, layers as stored). */
  ContentSize: number;
  /** Full normalised name, absent when untagged. */
  Name?: string;
  Dangling: boolean;
  MediaType: string;
  Platform?: string;
}

/** Which rows `listImageSummaries` returns. */
export interface ImageListOptions {
  /** `dangling=true`: only untagged images; false: only tagged ones. */
  dangling?: boolean;
  /** Only these repositories (`alpine`, `alpine:3`, globs `app/*` as docker's `reference=`). */
  reference?: readonly string[];
}

/**
 * Uncompressed size of a layer blob: the blob size when plain; the gzip trailer (ISIZE) when it
 * is plausible; the zstd frame's content size when written; else decompressed once and counted,
 * remembered under `<root>/sizes/`.
 */
export async function unpackedLayerSize(store: ContentStore, layer: Descriptor): Promise<number> {
  const comp = layerCompression(layer.mediaType) ?? 'none';
  if (comp === 'none') return layer.size;
  const cache = join(store.root, 'sizes', layer.digest.slice(7));
  const cached = Number(await readFile(cache, 'utf8').catch(() => 'NaN'));
  if (Number.isSafeInteger(cached) && cached >= 0) return cached;
  const path = store.blobPath(layer.digest);
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return layer.size;
  try {
    const st = await fh.stat();
    if (comp === 'gzip' && st.size >= 18 && st.size < 2 ** 31) {
      const b = Buffer.alloc(4);
      await fh.read(b, 0, 4, st.size - 4);
      const isize = b.readUInt32LE(0);
      // Below 4 GiB uncompressed, one gzip member: the trailer is exact.
      if (isize >= st.size / 2 || (isize > 0 && st.size < 1 << 20)) return isize;
    }
    if (comp === 'zstd') {
      const h = Buffer.alloc(18);
      await fh.read(h, 0, 18, 0);
      const fcs = zstdContentSize(h);
      if (fcs !== undefined) return fcs;
    }
  } finally {
    await fh.close();
  }
  let n = 0;
  // compress.js (zlib, the zstd child process) loads only when a size must be counted.
  const { decompressStream } = await import('./archive/compress.js');
  const counted = await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), decompressStream(comp, `layer ${layer.digest}`), async function* (src: AsyncIterable<Buffer>) {
    for await (const c of src) n += c.length;
  }).then(
    () => true,
    () => false,
  );
  if (!counted) return layer.size; // unreadable: the stored size, not remembered
  await mkdir(join(store.root, 'sizes'), { recursive: true }).catch(() => {});
  const tmp = `${cache}.tmp-${process.pid}`;
  await writeFile(tmp, String(n)).then(() => rename(tmp, cache)).catch(() => {});
  return n;
}

/** The Frame_Content_Size of a zstd frame header, when the header carries it. */
function zstdContentSize(h: Buffer): number | undefined {
  if (h.readUInt32LE(0) !== 0xfd2fb528) return undefined;
  const fhd = h[4]!;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const dictFlag = fhd & 3;
  if (fcsFlag === 0 && !single) return undefined;
  let off = 5 + (single ? 0 : 1) + [0, 1, 2, 4][dictFlag]!;
  switch (fcsFlag) {
    case 0:
      return h[off]!;
    case 1:
      return h.readUInt16LE(off) + 256;
    case 2:
      return h.readUInt32LE(off);
    default: {
      const v = h.readBigUInt64LE(off);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
    }
  }
}

/** Unpacked size of an image (docker's SIZE): the sum of its uncompressed layers. */
export async function imageUnpackedSize(store: ContentStore, v: ImageView): Promise<number> {
  let n = 0;
  for (const l of v.manifest.layers) n += await unpackedLayerSize(store, l);
  return n;
}

function matchesReference(name: string, patterns: readonly string[]): boolean {
  let ref;
  try {
    ref = parseReference(name);
  } catch {
    return false;
  }
  const familiar = familiarString({ domain: ref.domain, path: ref.path });
  return patterns.some((p) => {
    const [repoPat, tagPat] = p.includes(':') && p.lastIndexOf(':') > p.lastIndexOf('/') ? [p.slice(0, p.lastIndexOf(':')), p.slice(p.lastIndexOf(':') + 1)] : [p, undefined];
    const glob = (pat: string, v: string) => new RegExp('^' + pat.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.') + '$').test(v);
    const repoOk = glob(repoPat, familiar) || glob(repoPat, `${ref.domain}/${ref.path}`);
    return repoOk && (tagPat === undefined || glob(tagPat, ref.tag ?? ''));
  });
}

/** One row per tag and one per untagged image, for `berth images`; newest first. */
export async function listImageSummaries(store: ContentStore, opts: ImageListOptions = {}): Promise<ImageSummary[]> {
  // Each row reads a few small files: overlap them (the listing's cost is their latency).
  const limiter = new Limiter(16);
  const entries = (await listImageEntries(store)).filter(
    (e) => !(opts.dangling === true && e.name) && !(opts.dangling === false && !e.name) && !(opts.reference && (!e.name || !matchesReference(e.name, opts.reference))),
  );
  // What a row reads from its manifest, config and layers never changes for a root digest:
  // remembered in one file, so a listing reads index.json and this file, not three per image.
  const cachePath = join(store.root, 'sizes', 'summaries.json');
  const host = formatPlatform(hostPlatform());
  let cache: Record<string, CachedSummary> = {};
  try {
    const c = JSON.parse(readFileSync(cachePath, 'utf8')) as { host?: string; rows?: Record<string, CachedSummary> };
    if (c.host === host && c.rows && typeof c.rows === 'object') cache = c.rows;
  } catch {
    /* absent or damaged: rebuilt below */
  }
  let added = false;
  const out = await Promise.all(
    entries.map(async (e) => {
      const hit = cache[e.desc.digest];
      if (hit) return summaryFrom(e, hit);
      const row = await limiter.run(() => summaryRow(store, e));
      if (row.Platform !== undefined) {
        cache[e.desc.digest] = { ID: row.ID, ...(row.CreatedAt ? { CreatedAt: row.CreatedAt } : {}), Platform: row.Platform, ContentSize: row.ContentSize, Size: row.Size };
        added = true;
      }
      return row;
    }),
  );
  if (added) {
    const live = new Set(entries.map((e) => e.desc.digest as string));
    const all = await listImageEntries(store).catch(() => entries);
    for (const e of all) live.add(e.desc.digest);
    const rows = Object.fromEntries(Object.entries(cache).filter(([d]) => live.has(d)));
    await mkdir(join(store.root, 'sizes'), { recursive: true }).catch(() => {});
    const tmp = `${cachePath}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify({ host, rows })).then(() => rename(tmp, cachePath)).catch(() => {});
  }
  // Code-point order, not localeCompare: its first call builds an ICU collator (~11 ms of a listing).
  out.sort((a, b) => order(b.CreatedAt ?? '', a.CreatedAt ?? '') || order(a.Name ?? '\uffff', b.Name ?? '\uffff'));
  return out;
}

const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

type Entry = Awaited<ReturnType<typeof listImageEntries>>[number];
type CachedSummary = Pick<ImageSummary, 'ID' | 'CreatedAt' | 'Platform' | 'ContentSize' | 'Size'>;

function baseRow(e: Entry): ImageSummary {
  let repository = e.name ?? '<none>';
  let tag = '<none>';
  if (e.name) {
    try {
      const ref = parseReference(e.name);
      repository = familiarString({ domain: ref.domain, path: ref.path });
      tag = ref.tag ?? '<none>';
    } catch {
      /* names written by other tools may not parse: show them as they are */
    }
  }
  return {
    ID: e.desc.digest,
    Repository: repository,
    Tag: tag,
    Digest: e.desc.digest,
    Size: e.desc.size,
    ContentSize: e.desc.size,
    ...(e.name ? { Name: e.name } : {}),
    Dangling: !e.name,
    MediaType: e.desc.mediaType,
  };
}

function summaryFrom(e: Entry, c: CachedSummary): ImageSummary {
  return { ...baseRow(e), ID: c.ID, ...(c.CreatedAt ? { CreatedAt: c.CreatedAt } : {}), Platform: c.Platform, ContentSize: c.ContentSize, Size: c.Size };
}

async function summaryRow(store: ContentStore, e: Entry): Promise<ImageSummary> {
  const row = baseRow(e);
  try {
    const v = await viewImage(store, e.desc);
    row.ID = v.configDesc.digest;
    if (v.config.created) row.CreatedAt = v.config.created;
    row.Platform = formatPlatform({ os: v.config.os, architecture: v.config.architecture, ...(v.config.variant ? { variant: v.config.variant } : {}) });
    row.ContentSize = (e.desc.digest === v.manifestDesc.digest ? 0 : e.desc.size) + v.manifestDesc.size + v.configDesc.size + v.manifest.layers.reduce((a, l) => a + l.size, 0);
    row.Size = await imageUnpackedSize(store, v);
  } catch {
    /* an image of another platform only, or a broken one: listed with what is known */
  }
  return row;
}

/**
 * `docker image inspect`'s shape for one image, with berth's fields added after docker's:
 * `Name`, `Digest` (root), `ManifestDigest`, `MediaType`, `ContentSize`, `ImageConfig` (the raw
 * OCI config) and `Manifest`.
 */
export async function inspectImage(store: ContentStore, input: string, platform?: Platform): Promise<Record<string, unknown>> {
  const found = await findImage(store, input);
  const v = await viewImage(store, found.desc, platform);
  const entries = (await listImageEntries(store)).filter((e) => e.desc.digest === found.desc.digest);
  const repoTags: string[] = [];
  const repoDigests: string[] = [];
  for (const e of entries) {
    if (!e.name) continue;
    try {
      const ref = parseReference(e.name);
      repoTags.push(familiarString(ref));
      const rd = `${familiarName(ref)}@${found.desc.digest}`;
      if (!repoDigests.includes(rd)) repoDigests.push(rd);
    } catch {
      repoTags.push(e.name);
    }
  }
  const c = v.config.config ?? {};
  const history = v.config.history ?? [];
  return {
    Id: v.configDesc.digest,
    RepoTags: repoTags,
    RepoDigests: repoDigests,
    Parent: '',
    Comment: history.length ? (history[history.length - 1]!.comment ?? '') : '',
    Created: v.config.created ?? '',
    DockerVersion: '',
    Author: v.config.author ?? '',
    Config: {
      Hostname: '',
      Domainname: '',
      User: c.User ?? '',
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      ...(c.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}),
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: c.Env ?? null,
      Cmd: c.Cmd ?? null,
      Image: '',
      Volumes: c.Volumes ?? null,
      WorkingDir: c.WorkingDir ?? '',
      Entrypoint: c.Entrypoint ?? null,
      OnBuild: (c as { OnBuild?: string[] }).OnBuild ?? null,
      Labels: c.Labels ?? null,
      ...(c.StopSignal ? { StopSignal: c.StopSignal } : {}),
    },
    Architecture: v.config.architecture,
    ...(v.config.variant ? { Variant: v.config.variant } : {}),
    Os: v.config.os,
    Size: await imageUnpackedSize(store, v),
    RootFS: { Type: 'layers', Layers: v.config.rootfs.diff_ids },
    Metadata: { LastTagTime: '' },
    Descriptor: { mediaType: found.desc.mediaType || v.manifestDesc.mediaType, digest: found.desc.digest, size: found.desc.size },
    // berth's own fields
    Name: v.name ?? found.record?.name ?? null,
    Digest: found.desc.digest,
    ManifestDigest: v.manifestDesc.digest,
    MediaType: found.desc.mediaType || v.manifestDesc.mediaType,
    ContentSize: v.manifestDesc.size + v.configDesc.size + v.manifest.layers.reduce((a, l) => a + l.size, 0),
    ImageConfig: v.config,
    Manifest: v.manifest,
  };
}

/** The digests of every blob under `roots` (all platforms, missing children tolerated). */
async function graphDigests(store: ContentStore, roots: readonly Descriptor[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const r of roots) {
    const g = await walk(store, r, { allPlatforms: true, tolerateMissing: true }).catch(() => undefined);
    for (const n of g?.nodes ?? [{ desc: r }]) out.add(n.desc.digest);
  }
  return out;
}

/** Which container (name or short id) runs something under `digest`, if any. */
async function inUseBy(store: ContentStore, refs: readonly ContainerRef[], digest: string): Promise<string | undefined> {
  // A container records the manifest it ran; the name may point at an index above it.
  const size = await store.blobSize(digest as Digest);
  const under = size === undefined ? new Set<string>([digest]) : await graphDigests(store, [{ mediaType: '', digest: digest as Digest, size }]);
  const c = refs.find((r) => r.imageDigest && under.has(r.imageDigest));
  return c ? (c.name ?? c.id.slice(0, 12)) : undefined;
}

/** What `rmi` did for one argument, in docker's words. */
export interface RemoveImagesResult {
  input: string;
  /** Names removed (full normalised). */
  untagged: string[];
  /** Image ids deleted, then the blobs that went with them. */
  deleted: string[];
  /** Bytes of the blobs deleted. */
  bytes: number;
}

/**
 * `rmi`: untag, and delete an image when its last name goes (or by id): its blobs that no other
 * image, container or in-flight operation uses are removed at once. Refused while a container
 * uses the image, unless forced (then the image stays, untagged).
 */
export async function removeImages(store: ContentStore, names: readonly string[], opts: { force?: boolean } = {}): Promise<RemoveImagesResult[]> {
  const refs = await containerRefs(store.root);
  const results: RemoveImagesResult[] = [];
  for (const n of names) {
    const r = await removeImage(store, n, { ...(opts.force ? { force: true } : {}), inUse: (d) => inUseBy(store, refs, d) });
    const deleted: string[] = [...r.deleted];
    let bytes = 0;
    if (r.roots.length > 0) {
      const only = await graphDigests(store, r.roots);
      const g = await (await gcRoom()).gc(store, { extraRoots: await gcRoots(store), only });
      for (const d of g.removed) if (!deleted.includes(d)) deleted.push(d);
      bytes = g.bytes;
    }
    results.push({ input: n, untagged: r.untagged, deleted, bytes });
  }
  return results;
}

/** Roots gc keeps besides tags: images containers use, and layers build cache records point at. */
async function gcRoots(store: ContentStore): Promise<Descriptor[]> {
  const { cacheRoots } = await import('./build/native/cache.js');
  return [...(await containerRoots(store)), ...(await cacheRoots(store.root))];
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

export interface PruneResult extends GcResult {
  /** Untagged images removed (their ids). */
  images: string[];
  /** Build cache removed (`system prune`): step records, cache mounts (names), their bytes; mounts a running build holds stay. */
  buildCache?: { records: number; mounts: string[]; bytes: number; held: string[] };
  /** Unpacked layers removed (`system prune`) and their bytes (inodes counted once). */
  snapshots: string[];
  snapshotBytes: number;
  /** Everything reclaimed: blobs plus snapshots. */
  reclaimed: number;
}

/**
 * `image prune`: untagged images no container uses go (docker's dangling images), then every
 * blob nothing reaches. With `snapshots` (`system prune`), unpacked layers no image or
 * container uses go too, and their bytes count in `reclaimed`.
 */
export async function prune(store: ContentStore, opts: { dryRun?: boolean; snapshots?: boolean; buildCache?: boolean; signal?: AbortSignal } = {}): Promise<PruneResult> {
  const refs = await containerRefs(store.root);
  let buildCache: PruneResult['buildCache'];
  if (opts.buildCache) {
    const { pruneBuildCache } = await import('./build/native/cache.js');
    const b = await pruneBuildCache(store.root, store, { all: true, ...(opts.dryRun ? { dryRun: true } : {}) });
    buildCache = { records: b.records, mounts: b.mounts, bytes: b.bytes, held: b.held };
  }
  const images: string[] = [];
  for (const e of await listImageEntries(store)) {
    if (e.name || (await inUseBy(store, refs, e.desc.digest))) continue;
    const id = (await viewImage(store, e.desc).catch(() => undefined))?.configDesc.digest ?? e.desc.digest;
    images.push(id);
    if (!opts.dryRun) await store.updateIndex((ms) => {
      const i = ms.findIndex((m) => m.digest === e.desc.digest && !m.annotations?.['io.containerd.image.name'] && !m.annotations?.['org.opencontainers.image.ref.name']);
      if (i !== -1) ms.splice(i, 1);
    });
  }
  // A dry run removed no record: its layers count as garbage all the same.
  const r = await pruneContent(store, { ...opts, ...(opts.buildCache && opts.dryRun ? { withoutCache: true } : {}) });
  let snapshots: string[] = [];
  let snapshotBytes = 0;
  if (opts.snapshots && !opts.dryRun) {
    const seen = new Set<string>();
    snapshots = await pruneSnapshots(store, async (_n, dir) => {
      snapshotBytes += await diskBytes(dir, seen);
    });
  }
  const cacheBytes = buildCache?.bytes ?? 0;
  return { ...r, images, ...(buildCache ? { buildCache } : {}), snapshots, snapshotBytes, reclaimed: r.bytes + snapshotBytes + cacheBytes };
}

/** Collect unreferenced blobs (keeping what containers use and what build cache records point at). */
export async function pruneContent(store: ContentStore, opts: { dryRun?: boolean; signal?: AbortSignal; withoutCache?: boolean } = {}): Promise<GcResult> {
  const { withoutCache, ...rest } = opts;
  return (await gcRoom()).gc(store, { extraRoots: withoutCache ? await containerRoots(store) : await gcRoots(store), ...rest });
}

/**
 * `builder prune`: every build cache record and every cache mount no running build holds, then
 * the blobs only those records kept (an image that uses a layer keeps it).
 */
export interface BuildCachePruneResult {
  /** Step records removed; cache mounts removed and those a running build holds (left). */
  records: number;
  mounts: string[];
  held: string[];
  /** Layer blobs that only the removed records kept. */
  blobs: Digest[];
  reclaimed: number;
}

export async function pruneBuilderCache(store: ContentStore, opts: { dryRun?: boolean; signal?: AbortSignal } = {}): Promise<BuildCachePruneResult> {
  const { pruneBuildCache } = await import('./build/native/cache.js');
  const b = await pruneBuildCache(store.root, store, { all: true, ...(opts.dryRun ? { dryRun: true } : {}) });
  const only = new Set<string>(b.layers.map((l) => l.digest));
  const g = only.size > 0 ? await (await gcRoom()).gc(store, { extraRoots: opts.dryRun ? await containerRoots(store) : await gcRoots(store), only, ...opts }) : { removed: [] as Digest[], bytes: 0 };
  return { records: b.records, mounts: b.mounts, held: b.held, blobs: g.removed, reclaimed: g.bytes + b.bytes };
}

export async function checkStore(store: ContentStore, opts: { signal?: AbortSignal } = {}): Promise<CheckResult> {
  return (await gcRoom()).check(store, opts);
}

/**
 * Disk usage under `path` as `du -sx --block-size=1` reports it: allocated blocks of every
 * file, directory and link (lstat: links are not followed), each inode once (hard links and
 * inodes already in `seen` are not counted again), not crossing into other filesystems
 * (mounted container roots).
 */
export async function diskBytes(path: string, seen: Set<string> = new Set(), limit = 5_000_000): Promise<number> {
  let total = 0;
  let count = 0;
  const top = await lstat(path).catch(() => undefined);
  if (!top) return 0;
  const stack: string[] = [path];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (++count > limit) break;
    const st = p === path ? top : await lstat(p).catch(() => undefined);
    if (!st || st.dev !== top.dev) continue;
    const key = `${st.dev}:${st.ino}`;
    if (!seen.has(key)) {
      seen.add(key);
      total += st.blocks * 512;
    }
    if (st.isDirectory()) for (const n of await readdir(p).catch(() => [] as string[])) stack.push(join(p, n));
  }
  return total;
}

export interface DiskUsage {
  images: { count: number; size: number; reclaimable: number };
  containers: { count: number; size: number };
  snapshots: { size: number };
  ingest: { size: number };
  /** docker's Build Cache row: step records and cache mounts; size = their layers and mount bytes; reclaimable = what builder prune gives back. */
  buildCache: { count: number; active: number; size: number; reclaimable: number };
}

/** `system df`: blob bytes of images; disk usage (each inode once) of the other areas. */
export async function diskUsage(store: ContentStore): Promise<DiskUsage> {
  // Images as docker counts them: distinct images (tags of one image count once).
  const count = new Set((await listImageEntries(store)).map((e) => e.desc.digest)).size;
  const keep = await (await gcRoom()).reachable(store, await containerRoots(store));
  const { buildCacheUsage, cacheRoots } = await import('./build/native/cache.js');
  const cached = new Set<string>((await cacheRoots(store.root)).map((l) => l.digest));
  let all = 0;
  let reclaimable = 0;
  for (const d of await store.listBlobs()) {
    const s = (await store.blobSize(d)) ?? 0;
    all += s;
    // A blob only build cache keeps is the cache's to reclaim (image prune leaves it).
    if (!keep.has(d) && !cached.has(d)) reclaimable += s;
  }
  const bc = await buildCacheUsage(store.root, store, keep);
  const containers = await containerRefs(store.root);
  return {
    images: { count, size: all, reclaimable },
    containers: { count: containers.length, size: await diskBytes(join(store.root, 'containers')) },
    snapshots: { size: await diskBytes(join(store.root, 'snapshots')) },
    ingest: { size: await diskBytes(store.ingestDir) },
    buildCache: { count: bc.records + bc.mounts, active: bc.mountsHeld, size: bc.layerBytes + bc.mountBytes, reclaimable: bc.exclusiveBytes + bc.reclaimableMountBytes },
  };
}

/** `ps -s`: a container's writable layer on disk and its image's unpacked size. */
export async function containerSizes(root: string, store: ContentStore): Promise<Map<string, { rw: number; rootFs: number }>> {
  const { Snapshotter } = await import('./snapshot/index.js');
  const snap = await Snapshotter.open(root);
  const out = new Map<string, { rw: number; rootFs: number }>();
  for (const c of await containerRefs(root)) {
    let rw = 0;
    if (c.snapshotKey) {
      const dir = snap.pathOf('active', c.snapshotKey);
      const upper = join(dir, 'upper');
      rw = await diskBytes(upper).then((n) => n, () => 0);
      if (rw === 0) rw = await diskBytes(join(dir, 'fs'));
    }
    let image = 0;
    if (c.imageDigest && /^sha256:[a-f0-9]{64}$/.test(c.imageDigest)) {
      const size = await store.blobSize(c.imageDigest as Digest);
      if (size !== undefined) {
        const v = await viewImage(store, { mediaType: '', digest: c.imageDigest as Digest, size }).catch(() => undefined);
        if (v) image = await imageUnpackedSize(store, v);
      }
    }
    out.set(c.id, { rw, rootFs: rw + image });
  }
  return out;
}

export interface SystemInfo {
  root: string;
  store: { images: number; blobs: number; bytes: number; layout: string };
  runc: { found: boolean; version?: string; warning?: string };
  buildctl: { found: boolean; version?: string };
  kernel: string;
  node: string;
  platform: string;
  // docker info's keys, for `--format '{{.Images}}'` and the like
  Images: number;
  Containers: number;
  ContainersRunning: number;
  ContainersStopped: number;
  DockerRootDir: string;
  Driver: string;
  KernelVersion: string;
  OperatingSystem: string;
  OSType: string;
  Architecture: string;
  NCPU: number;
  MemTotal: number;
  Name: string;
}

/** `info`: where the store is, how big, and which runtimes were found. */
export async function systemInfo(store: ContentStore, signal?: AbortSignal): Promise<SystemInfo> {
  const { release, cpus, totalmem, hostname, arch } = await import('node:os');
  const { formatPlatform, hostPlatform } = await import('./oci/platform.js');
  const { Buildctl } = await import('./build/buildctl.js');
  const blobs = await store.listBlobs();
  let bytes = 0;
  for (const d of blobs) bytes += (await store.blobSize(d)) ?? 0;
  const images = (await listImageEntries(store)).length;
  const { Containers } = await import('./run/containers.js');
  const list = await (await Containers.open(store.root)).list().catch(() => []);
  const running = list.filter((c) => c.status === 'running').length;
  const { Snapshotter } = await import('./snapshot/index.js');
  const driver = await (await Snapshotter.open(store.root)).driver().catch(() => 'unknown');
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
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
    Images: images,
    Containers: list.length,
    ContainersRunning: running,
    ContainersStopped: list.length - running,
    DockerRootDir: store.root,
    Driver: driver,
    KernelVersion: release(),
    OperatingSystem: /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? 'unknown',
    OSType: process.platform,
    Architecture: arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? 'aarch64' : arch(),
    NCPU: cpus().length,
    MemTotal: totalmem(),
    Name: hostname(),
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
 * Remove unpacked layers that no image (tagged or not) and no container uses (images keep their
 * unpacked chain so the next run starts warm, like containerd's unpacked images).
 */
export async function pruneSnapshots(store: ContentStore, beforeRemove?: (name: string, dir: string) => Promise<void>): Promise<string[]> {
  const { Snapshotter, chainIds } = await import('./snapshot/index.js');
  const snap = await Snapshotter.open(store.root);
  const inUse = new Set<string>();
  for (const r of await listImageEntries(store)) {
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
  return snap.gc(inUse, beforeRemove ? { beforeRemove } : {});
}

/** One step of `history`, newest first (docker's order). */
export interface HistoryEntry {
  /** The image id on the newest step, `<missing>` on the others (as docker shows pulled images). */
  ID: string;
  CreatedAt?: string;
  CreatedBy: string;
  /** Unpacked size of the step's layer (0 for an empty layer). */
  Size: number;
  Comment: string;
  /** The layer blob of the step, when it made one. */
  Layer?: Digest;
}

/** `history`: the config's history joined with the manifest's layers. */
export async function imageHistory(store: ContentStore, input: string, platform?: Platform): Promise<HistoryEntry[]> {
  const found = await findImage(store, input);
  const v = await viewImage(store, found.desc, platform);
  const layers = [...v.manifest.layers];
  const rows: HistoryEntry[] = [];
  for (const h of v.config.history ?? []) {
    const layer = h.empty_layer ? undefined : layers.shift();
    rows.push({
      ID: '<missing>',
      ...(h.created ? { CreatedAt: h.created } : {}),
      CreatedBy: h.created_by ?? '',
      Size: layer ? await unpackedLayerSize(store, layer) : 0,
      Comment: h.comment ?? '',
      ...(layer ? { Layer: layer.digest } : {}),
    });
  }
  rows.reverse();
  if (rows[0]) rows[0].ID = v.configDesc.digest;
  return rows;
}

/** Docker's container-inspect keys (Id, Name, Image, State.Status, Config.Cmd, …) over berth's record. */
export function containerInspect(i: ContainerInfo): Record<string, unknown> {
  const r = i.record;
  return {
    Id: r.id,
    Created: r.created,
    Path: r.args[0] ?? '',
    Args: r.args.slice(1),
    State: {
      Status: i.status,
      Running: i.status === 'running',
      Pid: i.status === 'running' ? (i.state.pid ?? 0) : 0,
      ExitCode: i.state.exitCode ?? 0,
      StartedAt: i.state.startedAt ?? '',
      FinishedAt: i.state.finishedAt ?? '',
      ...i.state,
      status: i.status,
    },
    Image: r.image.config,
    Name: `/${r.name}`,
    Config: { Hostname: r.hostname, Tty: r.tty, OpenStdin: r.interactive, Cmd: r.args, Image: r.image.name ?? r.image.ref },
    ...r,
  };
}

