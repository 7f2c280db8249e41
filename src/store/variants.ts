/**
 * Compressed variants of stored content. An image imported from a plain rootfs tar has an
 * uncompressed layer; push (and `save --compress`, `import --compress`) send it gzip- or
 * zstd-compressed, as docker and podman do. The compressed blob is stored once and remembered:
 *
 *   <root>/variants/<source hex>.<gzip|zstd>   the descriptor of the variant (JSON)
 *
 * for layers (uncompressed -> compressed; the diff_id stays the uncompressed digest) and for the
 * manifests and indexes rewritten to name those layers. A second push finds them and compresses
 * nothing. gc keeps a variant as long as its source is kept (`variantsOf`).
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BerthError, fromSystemError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import { mapLimit } from '../oci/copy.js';
import { canonicalJson, digestHex, parseDigest } from '../oci/digest.js';
import { parseDescriptor, parseManifestOrIndex } from '../oci/manifest.js';
import { isIndex, isManifest, layerCompression, MediaType } from '../oci/mediatype.js';
import type { Descriptor, Digest, Index, Manifest } from '../oci/types.js';
import type { ContentStore } from './store.js';

export type VariantFormat = 'gzip' | 'zstd';

function variantsDir(store: ContentStore): string {
  return join(store.root, 'variants');
}

function recordPath(store: ContentStore, source: Digest, format: VariantFormat): string {
  return join(variantsDir(store), `${digestHex(parseDigest(source))}.${format}`);
}

/** The stored `format` variant of `source`, when one was made and its blob is still there. */
export async function findVariant(store: ContentStore, source: Digest, format: VariantFormat): Promise<Descriptor | undefined> {
  let raw: string;
  try {
    raw = await readFile(recordPath(store, source, format), 'utf8');
  } catch {
    return undefined;
  }
  let d: Descriptor;
  try {
    d = parseDescriptor(JSON.parse(raw), `variant of ${source}`);
  } catch {
    return undefined;
  }
  return (await store.exists(d)) ? d : undefined;
}

/** Remember that `variant` is the `format` form of `source` (atomic: temp file + rename). */
export async function recordVariant(store: ContentStore, source: Digest, format: VariantFormat, variant: Descriptor): Promise<void> {
  const path = recordPath(store, source, format);
  try {
    await mkdir(variantsDir(store), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(variant));
    await rename(tmp, path);
  } catch (e) {
    throw fromSystemError(e, `recording the ${format} variant of ${source}`);
  }
}

/** Every recorded variant: source digest -> variant descriptors (for gc). */
export async function variantsOf(store: ContentStore): Promise<Map<string, Descriptor[]>> {
  const out = new Map<string, Descriptor[]>();
  for (const f of await readdir(variantsDir(store)).catch(() => [] as string[])) {
    const m = /^([a-f0-9]{64})\.(gzip|zstd)$/.exec(f);
    if (!m) continue;
    try {
      const d = parseDescriptor(JSON.parse(await readFile(join(variantsDir(store), f), 'utf8')), f);
      const k = `sha256:${m[1]}`;
      out.set(k, [...(out.get(k) ?? []), d]);
    } catch {
      /* a torn record is ignored (and its blob collected) */
    }
  }
  return out;
}

/** The compressed media type for an uncompressed layer type, in the manifest's own family. */
function compressedType(mt: string, format: VariantFormat): string {
  const docker = mt.startsWith('application/vnd.docker.');
  const nondist = mt.includes('nondistributable');
  if (docker) return format === 'gzip' ? MediaType.DOCKER_LAYER_GZIP : MediaType.DOCKER_LAYER_ZSTD;
  if (nondist) return format === 'gzip' ? MediaType.OCI_LAYER_NONDIST_GZIP : MediaType.OCI_LAYER_NONDIST_ZSTD;
  return format === 'gzip' ? MediaType.OCI_LAYER_GZIP : MediaType.OCI_LAYER_ZSTD;
}

export interface CompressOptions extends OpOptions {
  format: VariantFormat;
  level?: number;
  /** Makes a compressing stream (the archive room's `compressStream`). */
  compressor: (format: VariantFormat, level?: number) => Duplex | Transform;
  /** Layers compressed at once (default 2). */
  concurrency?: number;
}

export interface CompressResult {
  /** The root to use: `root` itself when every layer was compressed already. */
  root: Descriptor;
  /** Layers compressed now, and layers whose stored variant was reused. */
  compressed: Digest[];
  reused: Digest[];
}

/**
 * The image under `root` with every uncompressed layer replaced by its `format` variant
 * (made now, or the one stored by an earlier call): manifests and indexes are rewritten and
 * stored, the configs (and so diff_ids and the image id) are unchanged.
 */
export async function compressImage(store: ContentStore, root: Descriptor, opts: CompressOptions): Promise<CompressResult> {
  const compressed: Digest[] = [];
  const reused: Digest[] = [];
  const layerVariant = async (l: Descriptor): Promise<Descriptor> => {
    const have = await findVariant(store, l.digest, opts.format);
    if (have) {
      reused.push(l.digest);
      return { ...l, mediaType: have.mediaType, digest: have.digest, size: have.size };
    }
    opts.signal?.throwIfAborted();
    opts.onProgress?.({ type: 'message', text: `compressing ${l.digest.slice(7, 19)} (${opts.format})` });
    const src = await store.fetch(l);
    const c = opts.compressor(opts.format, opts.level);
    const feeding = pipeline(src, c, opts.signal ? { signal: opts.signal } : {});
    const [, committed] = await Promise.all([feeding, store.putStream(c, { what: `${opts.format} of layer ${l.digest}` }, opts)]);
    const v: Descriptor = { mediaType: compressedType(l.mediaType, opts.format), digest: committed.digest, size: committed.size };
    await recordVariant(store, l.digest, opts.format, v);
    compressed.push(l.digest);
    return { ...l, ...v };
  };
  const visit = async (desc: Descriptor, depth: number): Promise<Descriptor> => {
    if (depth > 8) throw new BerthError('INVALID_ARGUMENT', `index ${root.digest} nests too deep`);
    const have = await findVariant(store, desc.digest, opts.format);
    if (have) return { ...desc, mediaType: have.mediaType, digest: have.digest, size: have.size };
    const bytes = await store.fetchBytes(desc);
    const doc = parseManifestOrIndex(bytes, desc);
    let out: Manifest | Index | undefined;
    if (doc.kind === 'manifest') {
      const m = doc.manifest;
      if (!m.layers.some((l) => layerCompression(l.mediaType) === 'none')) return desc;
      const layers = await mapLimit(m.layers, opts.concurrency ?? 2, (l) => (layerCompression(l.mediaType) === 'none' ? layerVariant(l) : Promise.resolve(l)));
      out = { ...m, layers };
    } else {
      const children: Descriptor[] = [];
      let changed = false;
      for (const c of doc.index.manifests) {
        const n = isIndex(c.mediaType) || isManifest(c.mediaType) ? (await store.has(c)) ? await visit(c, depth + 1) : c : c;
        if (n.digest !== c.digest) changed = true;
        children.push(n);
      }
      if (!changed) return desc;
      out = { ...doc.index, manifests: children };
    }
    const nb = canonicalJson(out);
    const put = await store.putBytes(nb);
    const v: Descriptor = { mediaType: doc.mediaType, digest: put.digest, size: put.size };
    await recordVariant(store, desc.digest, opts.format, v);
    const { annotations, platform } = desc;
    return { ...v, ...(annotations ? { annotations } : {}), ...(platform ? { platform } : {}) };
  };
  return store.withLease(async () => ({ root: await visit(root, 0), compressed, reused }));
}

/**
 * Drop the records whose sources are `sources` (their plain blobs are about to go): the variants
 * then live only by being referenced themselves (`import --compress` tags the variant).
 */
export async function forgetVariantSource(store: ContentStore, ...sources: Descriptor[]): Promise<void> {
  const { unlink } = await import('node:fs/promises');
  for (const s of sources) for (const f of ['gzip', 'zstd'] as const) await unlink(recordPath(store, s.digest, f)).catch(() => {});
}
