/**
 * containerd as a place images live: a ContentSource (reads through the content service) and a
 * ContentTarget (asks Info first, writes only what is missing, resumes interrupted ingests), the
 * garbage-collection labels `ctr import` puts on manifests and indexes, the image record, and
 * the read-back check after a copy.
 */
import type { Readable } from 'node:stream';
import { BerthError } from '../errors.js';
import type { ContentSource, ContentTarget, OpOptions } from '../oci/content.js';
import { mapLimit } from '../oci/copy.js';
import { VerifyingStream, verifyBytes } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, parseManifestOrIndex } from '../oci/manifest.js';
import { isIndex, isManifest } from '../oci/mediatype.js';
import type { Descriptor } from '../oci/types.js';
import { walk, type Graph, type WalkOptions } from '../oci/walk.js';
import type { ContainerdClient } from './client.js';

/** The labels that make containerd's gc keep a document's children (what `ctr import` sets). */
export function childLabels(desc: Descriptor, bytes: Buffer): Record<string, string> {
  const labels: Record<string, string> = {};
  const doc = parseManifestOrIndex(bytes, desc);
  if (doc.kind === 'index') {
    doc.index.manifests.forEach((m, i) => (labels[`containerd.io/gc.ref.content.m.${i}`] = m.digest));
  } else {
    labels['containerd.io/gc.ref.content.config'] = doc.manifest.config.digest;
    doc.manifest.layers.forEach((l, i) => (labels[`containerd.io/gc.ref.content.l.${i}`] = l.digest));
  }
  return labels;
}

/** Reads blobs from containerd's content store (verified as they stream). */
export class ContainerdSource implements ContentSource {
  constructor(readonly client: ContainerdClient) {}

  /** The image record's target: the root to copy from. */
  async resolve(name: string, opts: OpOptions = {}): Promise<Descriptor> {
    const img = await this.client.getImage(name, opts);
    if (!img) throw new BerthError('NOT_FOUND', `image ${name} not found in containerd namespace ${this.client.namespace}`, { hint: `list them with: ctr -n ${this.client.namespace} images ls` });
    const { annotations: _a, ...root } = img.target;
    return root;
  }

  async fetchBytes(desc: Descriptor, opts: OpOptions = {}): Promise<Buffer> {
    if (desc.size > MAX_MANIFEST_BYTES * 2) throw new BerthError('INVALID_ARGUMENT', `${desc.digest}: ${desc.size} bytes is too large for a document`);
    const chunks: Buffer[] = [];
    for await (const c of this.client.read(desc, opts)) chunks.push(c as Buffer);
    const data = Buffer.concat(chunks);
    verifyBytes(data, { digest: desc.digest, size: desc.size, what: `containerd blob ${desc.digest}` });
    return data;
  }

  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    const v = new VerifyingStream({ digest: desc.digest, size: desc.size, what: `containerd blob ${desc.digest}` });
    const src = this.client.read(desc, opts);
    src.on('error', (e) => v.destroy(e));
    return src.pipe(v);
  }

  async has(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    const i = await this.client.info(desc.digest, opts);
    return i !== undefined && i.size === desc.size;
  }
}

export interface TargetCounts {
  /** Blobs written (sent, at least partly). */
  blobsSent: number;
  /** Bytes sent over the socket (a resumed blob counts only what was missing). */
  bytesSent: number;
  /** Bytes an interrupted earlier copy had left in containerd's ingests and that were kept. */
  bytesResumed: number;
}

/**
 * Writes into containerd. Each blob is looked up (Info) first; a missing one is written under
 * the ingest ref `berth-<digest>` so a copy killed mid-blob resumes from containerd's offset.
 * Run it inside `client.withLease()` so gc cannot take blobs before the image record holds them.
 */
export class ContainerdTarget implements ContentTarget {
  readonly counts: TargetCounts = { blobsSent: 0, bytesSent: 0, bytesResumed: 0 };
  /** The same containerd read as a source (after the copy). */
  readonly source: ContainerdSource;
  constructor(readonly client: ContainerdClient) {
    this.source = new ContainerdSource(client);
  }

  async exists(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    const i = await this.client.info(desc.digest, opts);
    return i !== undefined && i.size === desc.size;
  }

  async write(desc: Descriptor, content: Buffer | (() => Promise<Readable>), opts: OpOptions = {}): Promise<void> {
    const labels = Buffer.isBuffer(content) && (isIndex(desc.mediaType) || isManifest(desc.mediaType)) ? childLabels(desc, content) : undefined;
    const r = await this.client.writeBlob(`berth-${desc.digest}`, desc, content, { ...opts, ...(labels ? { labels } : {}) });
    if (r.existed) return;
    this.counts.blobsSent++;
    this.counts.bytesSent += r.sent;
    this.counts.bytesResumed += r.resumedFrom;
  }

  /**
   * Make the copied graph an image: the gc labels on every document (also on those containerd
   * had already, which an older import may have left unlabelled), then the image record
   * `name -> root` (created or updated).
   */
  async finish(name: string, root: Descriptor, graph: Graph, opts: OpOptions & { labels?: Record<string, string> } = {}): Promise<'created' | 'updated'> {
    for (const n of graph.nodes) {
      if (n.kind !== 'index' && n.kind !== 'manifest') continue;
      const want = childLabels(n.desc, n.bytes ?? Buffer.alloc(0));
      const info = await this.client.info(n.desc.digest, opts);
      if (!info) throw new BerthError('INTERNAL', `${n.desc.digest} vanished from containerd during the copy`);
      const missing = Object.fromEntries(Object.entries(want).filter(([k, v]) => info.labels[k] !== v));
      await this.client.setLabels(n.desc.digest, missing, opts);
    }
    const { annotations: _a, platform: _p, ...target } = root;
    return this.client.putImage(name, target, opts.labels ?? {}, opts);
  }
}

/**
 * Read the image `name` back through the API: its record points at `root`, every document is
 * read and verified by digest, every blob is present with its size. What `ctr images check`
 * calls complete.
 */
export async function verifyImage(client: ContainerdClient, name: string, root: Descriptor, opts: WalkOptions = {}): Promise<Graph> {
  const img = await client.getImage(name, opts);
  if (!img || img.target.digest !== root.digest) throw new BerthError('INTERNAL', `containerd image ${name} does not point at ${root.digest} after the copy`);
  const src = new ContainerdSource(client);
  const graph = await walk(src, root, opts);
  // Documents were read and verified by the walk; blobs are asked for (8 at once).
  await mapLimit(
    graph.nodes.filter((n) => !n.bytes),
    8,
    async (n) => {
      if (!(await src.has(n.desc, opts))) throw new BerthError('DIGEST_MISMATCH', `containerd image ${name}: blob ${n.desc.digest} is missing or has the wrong size after the copy`);
    },
  );
  return graph;
}
