import type { ContentSource, ContentTarget, OpOptions } from './content.js';
import type { Descriptor, Platform } from './types.js';
import { walk, type Graph, type GraphNode } from './walk.js';

export interface CopyOptions extends OpOptions {
  platform?: Platform;
  allPlatforms?: boolean;
  /** Blobs transferred at once (default 4). */
  concurrency?: number;
  tolerateMissing?: boolean;
}

export interface CopyResult {
  root: Descriptor;
  graph: Graph;
  /** Blobs written to the target. */
  copied: Descriptor[];
  /** Blobs the target already had. */
  existing: Descriptor[];
}

/** Run `fn` over `items` with at most `limit` at once; the first failure aborts the rest. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== undefined) throw failed;
  return out;
}

/**
 * Copy the graph under `root` from `src` to `dst`: blobs first (concurrently, skipping what the
 * target has), then manifests and indexes bottom-up so no parent is visible before its children.
 * Pull, push, save and load are all this.
 */
export async function copy(src: ContentSource, dst: ContentTarget, root: Descriptor, opts: CopyOptions = {}): Promise<CopyResult> {
  const graph = await walk(src, root, opts);
  const copied: Descriptor[] = [];
  const existing: Descriptor[] = [];
  const blobs = graph.nodes.filter((n) => n.kind === 'config' || n.kind === 'layer');
  const docs = graph.nodes.filter((n) => n.kind === 'index' || n.kind === 'manifest');
  opts.onProgress?.({ type: 'plan', blobs: graph.nodes.length, size: graph.nodes.reduce((a, n) => a + n.desc.size, 0) });
  const one = async (n: GraphNode) => {
    opts.signal?.throwIfAborted();
    if (await dst.exists(n.desc, opts)) {
      existing.push(n.desc);
      opts.onProgress?.({ type: 'blob-done', digest: n.desc.digest, size: n.desc.size, skipped: true, reason: 'exists' });
      return;
    }
    opts.onProgress?.({ type: 'blob-start', digest: n.desc.digest, size: n.desc.size, mediaType: n.desc.mediaType });
    await dst.write(n.desc, n.bytes ?? (() => src.fetch(n.desc, opts)), opts);
    copied.push(n.desc);
    opts.onProgress?.({ type: 'blob-done', digest: n.desc.digest, size: n.desc.size });
  };
  await mapLimit(blobs, opts.concurrency ?? 4, one);
  for (const n of docs) await one(n); // post-order: children first
  return { root, graph, copied, existing };
}
