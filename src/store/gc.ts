import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError } from '../errors.js';
import type { Descriptor, Digest } from '../oci/types.js';
import { walk } from '../oci/walk.js';
import { pidAlive } from './lock.js';
import type { ContentStore } from './store.js';
import { variantsOf } from './variants.js';

export interface GcOptions {
  /** More roots to keep (images that containers use, build cache). */
  extraRoots?: readonly Descriptor[];
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
  /** Only consider these digests (the blobs of an image `rmi` removed). */
  only?: ReadonlySet<string>;
  signal?: AbortSignal;
}

export interface GcResult {
  removed: Digest[];
  bytes: number;
  /** Ingest leftovers of dead processes removed. */
  ingests: number;
}

/** Every digest reachable from the index and the extra roots (all platforms; sparse indexes allowed). */
export async function reachable(store: ContentStore, extraRoots: readonly Descriptor[] = []): Promise<Set<string>> {
  const idx = await store.readIndex();
  const keep = new Set<string>();
  for (const root of [...idx.manifests, ...extraRoots]) {
    if (!(await store.has(root))) continue;
    let g;
    try {
      g = await walk(store, root, { allPlatforms: true, tolerateMissing: true });
    } catch (e) {
      throw new BerthError('INTERNAL', `cannot collect garbage: image ${root.digest} is unreadable`, {
        cause: e,
        hint: 'run berth system check, then remove or re-pull the broken image',
      });
    }
    for (const n of g.nodes) keep.add(n.desc.digest);
  }
  // Compressed variants (push, save --compress) live as long as what they were made from.
  const variants = await variantsOf(store);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [source, vs] of variants) {
      if (!keep.has(source)) continue;
      for (const v of vs) {
        if (keep.has(v.digest) || !(await store.has(v))) continue;
        grew = true;
        keep.add(v.digest);
        const g = await walk(store, v, { allPlatforms: true, tolerateMissing: true }).catch(() => undefined);
        for (const n of g?.nodes ?? []) keep.add(n.desc.digest);
      }
    }
  }
  return keep;
}

/**
 * Remove blobs that no tag (and no extra root) reaches, never touching what a live operation
 * holds by lease. Blobs are listed before the leases and the index are read, so a blob committed
 * meanwhile is either not listed or already leased.
 */
export async function gc(store: ContentStore, opts: GcOptions = {}): Promise<GcResult> {
  const listed = await store.listBlobs();
  const held = await store.leasedDigests();
  const removed: Digest[] = [];
  let bytes = 0;
  await store.withIndexLock(async () => {
    const keep = await reachable(store, opts.extraRoots);
    for (const d of listed) {
      opts.signal?.throwIfAborted();
      if (keep.has(d) || held.has(d) || (opts.only && !opts.only.has(d))) continue;
      const p = store.blobPath(d);
      const size = await stat(p).then((s) => s.size, () => 0);
      if (!opts.dryRun) await unlink(p).catch(() => {});
      removed.push(d);
      bytes += size;
    }
  });
  // Temporary ingests of processes that are gone (keyed ingests stay: they are resumable).
  let ingests = 0;
  if (opts.only) return { removed, bytes, ingests };
  for (const n of await readdir(store.ingestDir).catch(() => [] as string[])) {
    const m = /^tmp-(\d+)-/.exec(n);
    if (m && !pidAlive(Number(m[1]))) {
      if (!opts.dryRun) await rm(join(store.ingestDir, n), { recursive: true, force: true });
      ingests++;
    }
  }
  return { removed, bytes, ingests };
}

export interface CheckProblem {
  digest?: string;
  path?: string;
  problem: string;
}

export interface CheckResult {
  blobs: number;
  bytes: number;
  images: number;
  problems: CheckProblem[];
}

async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

/** Re-hash every blob and check that every tagged image is whole. */
export async function check(store: ContentStore, opts: { signal?: AbortSignal; onBlob?: (d: string) => void } = {}): Promise<CheckResult> {
  const problems: CheckProblem[] = [];
  let bytes = 0;
  const names = await readdir(store.blobsDir).catch(() => [] as string[]);
  let blobs = 0;
  for (const n of names) {
    opts.signal?.throwIfAborted();
    const p = join(store.blobsDir, n);
    if (!/^[a-f0-9]{64}$/.test(n)) {
      problems.push({ path: p, problem: 'unexpected file in blobs/sha256' });
      continue;
    }
    blobs++;
    opts.onBlob?.(n);
    try {
      const { digest, size } = await hashFile(p);
      bytes += size;
      if (digest !== `sha256:${n}`) problems.push({ digest: `sha256:${n}`, path: p, problem: `content hashes to ${digest}` });
    } catch (e) {
      problems.push({ digest: `sha256:${n}`, path: p, problem: `unreadable: ${(e as Error).message}` });
    }
  }
  const bad = new Set(problems.map((p) => p.digest));
  let images = 0;
  let idx;
  try {
    idx = await store.readIndex();
  } catch (e) {
    problems.push({ path: store.indexPath, problem: (e as BerthError).message });
    return { blobs, bytes, images, problems };
  }
  for (const root of idx.manifests) {
    images++;
    const name = root.annotations?.['io.containerd.image.name'] ?? root.annotations?.['org.opencontainers.image.ref.name'] ?? root.digest;
    if (bad.has(root.digest)) continue;
    if (!(await store.has(root))) {
      problems.push({ digest: root.digest, problem: `image ${name}: root blob is missing` });
      continue;
    }
    try {
      const g = await walk(store, root, { allPlatforms: true, tolerateMissing: true });
      for (const n of g.nodes) {
        if (n.kind === 'index' || n.kind === 'manifest' || bad.has(n.desc.digest)) continue;
        const size = await store.blobSize(n.desc.digest);
        if (size === undefined) problems.push({ digest: n.desc.digest, problem: `image ${name}: ${n.kind} blob is missing` });
        else if (size !== n.desc.size) problems.push({ digest: n.desc.digest, problem: `image ${name}: ${n.kind} size ${size} differs from ${n.desc.size}` });
      }
      // A manifest whose config or layers are absent makes the image unusable.
      for (const s of g.skipped) {
        if (s.reason === 'not present' && g.manifests.some((m) => m.manifest?.config.digest === s.desc.digest || m.manifest?.layers.some((l) => l.digest === s.desc.digest))) {
          problems.push({ digest: s.desc.digest, problem: `image ${name}: blob is missing` });
        }
      }
    } catch (e) {
      problems.push({ digest: root.digest, problem: `image ${name}: ${(e as Error).message}` });
    }
  }
  return { blobs, bytes, images, problems };
}
