import { BerthError } from '../errors.js';
import type { ContentSource, OpOptions } from './content.js';
import { parseManifestOrIndex } from './manifest.js';
import { isConfig, isIndex, isManifest } from './mediatype.js';
import { formatPlatform, hostPlatform, platformScore } from './platform.js';
import type { Descriptor, Index, Manifest, Platform } from './types.js';

export type NodeKind = 'index' | 'manifest' | 'config' | 'layer';

export interface GraphNode {
  readonly desc: Descriptor;
  readonly kind: NodeKind;
  /** The document bytes for index/manifest nodes (already verified). */
  readonly bytes?: Buffer;
  readonly index?: Index;
  readonly manifest?: Manifest;
}

export interface WalkOptions extends OpOptions {
  /** Keep every child of every index (default: only the best match for `platform`). */
  allPlatforms?: boolean;
  /** Platform to select in indexes; default this host. */
  platform?: Platform;
  /** Skip children the source does not have (sparse indexes) instead of failing. */
  tolerateMissing?: boolean;
  /** Never read more than this many documents (guards against cyclic or huge graphs). */
  maxNodes?: number;
}

export interface Graph {
  /** Nodes in post-order: every node comes after all of its children. Deduplicated by digest. */
  readonly nodes: readonly GraphNode[];
  /** Manifests selected (the images). */
  readonly manifests: readonly GraphNode[];
  /** Index children left out: other platforms, or absent from a sparse source. */
  readonly skipped: readonly { desc: Descriptor; reason: string }[];
}

/** Whether an index child is an attestation or other non-image manifest. */
export function isAttestation(d: Descriptor): boolean {
  return d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' || (d.platform?.os === 'unknown' && d.platform.architecture === 'unknown');
}

/** Choose which children of an index to follow. */
export function selectChildren(index: Index, opts: WalkOptions): { keep: Descriptor[]; skip: { desc: Descriptor; reason: string }[] } {
  if (opts.allPlatforms) return { keep: [...index.manifests], skip: [] };
  const want = opts.platform ?? hostPlatform();
  const keep: Descriptor[] = [];
  const skip: { desc: Descriptor; reason: string }[] = [];
  let best: Descriptor | undefined;
  let bestScore = -1;
  for (const m of index.manifests) {
    if (isIndex(m.mediaType)) {
      keep.push(m);
      continue;
    }
    const s = isAttestation(m) ? -1 : m.platform ? platformScore(want, m.platform) : isManifest(m.mediaType) ? 0 : -1;
    if (s > bestScore) {
      if (best) skip.push({ desc: best, reason: 'other platform' });
      best = m;
      bestScore = s;
    } else {
      skip.push({ desc: m, reason: isAttestation(m) ? 'attestation' : 'other platform' });
    }
  }
  if (best) keep.push(best);
  return { keep, skip };
}

/**
 * Walk the descriptor graph from `root` (index -> manifests -> config + layers), reading index
 * and manifest documents from the source. Pull, push, save, load and gc all use it.
 */
export async function walk(source: ContentSource, root: Descriptor, opts: WalkOptions = {}): Promise<Graph> {
  const nodes: GraphNode[] = [];
  const manifests: GraphNode[] = [];
  const skipped: { desc: Descriptor; reason: string }[] = [];
  const seen = new Set<string>();
  const maxNodes = opts.maxNodes ?? 10_000;
  let count = 0;

  const visit = async (desc: Descriptor, depth: number): Promise<void> => {
    if (seen.has(desc.digest)) return;
    seen.add(desc.digest);
    if (++count > maxNodes) throw new BerthError('INVALID_ARGUMENT', `image graph under ${root.digest} has more than ${maxNodes} nodes`);
    if (depth > 8) throw new BerthError('INVALID_ARGUMENT', `image graph under ${root.digest} nests indexes more than 8 deep`);
    opts.signal?.throwIfAborted();
    // A root with an empty media type (a bare digest) is read as whatever document it is.
    if (isIndex(desc.mediaType) || isManifest(desc.mediaType) || (depth === 0 && desc.mediaType === '')) {
      const bytes = await source.fetchBytes(desc, opts);
      const doc = parseManifestOrIndex(bytes, desc);
      if (desc.mediaType === '') desc = { ...desc, mediaType: doc.mediaType };
      if (doc.kind === 'index') {
        const { keep, skip } = selectChildren(doc.index, opts);
        skipped.push(...skip);
        let kept = 0;
        for (const child of keep) {
          if (opts.tolerateMissing && source.has && !(await source.has(child, opts))) {
            skipped.push({ desc: child, reason: 'not present' });
            continue;
          }
          await visit(child, depth + 1);
          kept++;
        }
        if (!opts.allPlatforms && depth === 0 && kept === 0 && manifests.length === 0) {
          const want = formatPlatform(opts.platform ?? hostPlatform());
          throw new BerthError('NOT_FOUND', `no image for platform ${want} in index ${desc.digest}`, {
            hint: 'choose another --platform, or use --all-platforms',
          });
        }
        nodes.push({ desc, kind: 'index', bytes, index: doc.index });
      } else {
        const m = doc.manifest;
        for (const child of [m.config, ...m.layers]) {
          if (seen.has(child.digest)) continue;
          seen.add(child.digest);
          if (opts.tolerateMissing && source.has && !(await source.has(child, opts))) {
            skipped.push({ desc: child, reason: 'not present' });
            continue;
          }
          nodes.push({ desc: child, kind: child === m.config ? 'config' : 'layer' });
        }
        const node: GraphNode = { desc, kind: 'manifest', bytes, manifest: m };
        nodes.push(node);
        manifests.push(node);
      }
    } else if (isConfig(desc.mediaType)) {
      nodes.push({ desc, kind: 'config' });
    } else {
      nodes.push({ desc, kind: 'layer' });
    }
  };
  await visit(root, 0);
  return { nodes, manifests, skipped };
}
