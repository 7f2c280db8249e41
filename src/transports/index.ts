/**
 * `berth copy SRC DST`: skopeo's transport names over the one `copy()` of src/oci. Every place
 * an image lives (a registry, an OCI layout directory, an oci-archive or docker-archive file,
 * containerd, berth's store) is a ContentSource and a ContentTarget; only what the target lacks
 * is sent, and nothing passes through berth's store unless it is one of the ends.
 */
import { setMaxListeners } from 'node:events';
import { BerthError, fromSystemError } from '../errors.js';
import type { ContentSource, ContentTarget, OpOptions, ProgressEvent } from '../oci/content.js';
import { copy } from '../oci/copy.js';
import { parseManifestOrIndex } from '../oci/manifest.js';
import { isIndex, MediaType } from '../oci/mediatype.js';
import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import type { Descriptor, Digest, Platform } from '../oci/types.js';
import { walk, type Graph } from '../oci/walk.js';
import type { RegistryOptions } from '../registry/client.js';
import type { ContentStore } from '../store/store.js';
import { ArchiveFileTarget, LayoutDirTarget, LayoutSource } from './files.js';

export type ImageLocation =
  | { transport: 'docker'; ref: string }
  | { transport: 'oci'; path: string; ref?: string }
  | { transport: 'oci-archive'; path: string; ref?: string }
  | { transport: 'docker-archive'; path: string; ref?: string }
  | { transport: 'containerd'; namespace: string; ref: string }
  | { transport: 'berth'; ref: string };

/** skopeo transports berth does not implement: a clear UNSUPPORTED rather than "unknown". */
const FOREIGN = ['dir', 'docker-daemon', 'containers-storage', 'ostree', 'sif', 'tarball'];
const KNOWN = ['docker', 'oci', 'oci-archive', 'docker-archive', 'containerd', 'berth'];

function splitPathRef(rest: string): { path: string; ref?: string } {
  // skopeo's rule: the path ends at the first ':' (paths with ':' cannot be named).
  const i = rest.indexOf(':');
  return i === -1 ? { path: rest } : { path: rest.slice(0, i), ...(rest.slice(i + 1) ? { ref: rest.slice(i + 1) } : {}) };
}

/**
 * Parse an image location: `docker://REF`, `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
 * `docker-archive:FILE[:REF]`, `containerd:[NAMESPACE/]REF` (with a `/`, the first component is
 * the namespace: write `containerd:default/host/x` for names with slashes), `berth:REF`, or a
 * bare REF for berth's store.
 */
export function parseLocation(input: string): ImageLocation {
  const m = /^([a-z][a-z0-9-]*):(.*)$/s.exec(input);
  const bad = (why: string) => new BerthError('INVALID_ARGUMENT', `${JSON.stringify(input)}: ${why}`);
  if (m && KNOWN.includes(m[1]!)) {
    const [, t, rest] = m as unknown as [string, string, string];
    switch (t) {
      case 'docker':
        if (!rest.startsWith('//') || rest.length === 2) throw bad('write docker://HOST/NAME[:TAG]');
        parseReference(rest.slice(2));
        return { transport: 'docker', ref: rest.slice(2) };
      case 'oci':
      case 'oci-archive':
      case 'docker-archive': {
        const p = splitPathRef(rest);
        if (!p.path) throw bad(`give a path: ${t}:PATH[:REF]`);
        return { transport: t, ...p };
      }
      case 'containerd': {
        const slash = rest.indexOf('/');
        const namespace = slash === -1 ? 'default' : rest.slice(0, slash);
        const ref = slash === -1 ? rest : rest.slice(slash + 1);
        if (!namespace || !ref) throw bad('write containerd:[NAMESPACE/]NAME[:TAG]');
        parseReference(ref);
        return { transport: 'containerd', namespace, ref };
      }
      default:
        if (!rest) throw bad('give an image name');
        parseReference(rest);
        return { transport: 'berth', ref: rest };
    }
  }
  if (m && FOREIGN.includes(m[1]!)) {
    throw new BerthError('UNSUPPORTED', `transport ${m[1]}: is not supported by berth`, { hint: `use one of ${KNOWN.map((k) => `${k}:`).join(' ')}` });
  }
  try {
    parseReference(input);
  } catch (e) {
    if (m) throw new BerthError('INVALID_ARGUMENT', `unknown transport ${JSON.stringify(m[1])} in ${JSON.stringify(input)}`, { hint: `use one of ${KNOWN.map((k) => `${k}:`).join(' ')} or a bare image name` });
    throw e;
  }
  return { transport: 'berth', ref: input };
}

/** A full image name as containerd and the store keep it: domain, path and tag (default latest). */
export function fullImageName(ref: string): string {
  const r = parseReference(ref);
  return formatReference({ domain: r.domain, path: r.path, ...(r.tag !== undefined || r.digest === undefined ? { tag: r.tag ?? 'latest' } : {}), ...(r.digest ? { digest: r.digest } : {}) });
}

export interface CopyImageOptions extends OpOptions, RegistryOptions {
  platform?: Platform;
  allPlatforms?: boolean;
  /** Blobs in flight at once (default 4). */
  concurrency?: number;
  /** berth's store, opened only when an end is `berth:` or a bare name. */
  store?: () => Promise<ContentStore>;
  /** containerd's socket (else CONTAINERD_ADDRESS, else /run/containerd/containerd.sock). */
  containerdAddress?: string;
  /** Into containerd: unpack the image for this snapshotter (`true`: overlayfs) after the copy. */
  unpack?: boolean | string;
}

export interface CopyImageResult {
  source: ImageLocation;
  destination: ImageLocation;
  /** The name the target holds the image under (when it has names). */
  name?: string;
  root: Descriptor;
  /** Blobs (and their bytes) written to the target. */
  sent: { blobs: number; bytes: number };
  /** Blobs the target already had. */
  existing: { blobs: number; bytes: number };
  /** Bytes an interrupted earlier copy into containerd had left there and that were kept. */
  resumedBytes: number;
  /** Whether the target was read back and checked (containerd). */
  verified: boolean;
  /** With `unpack`: the snapshotter, the top chain id and how many layers were applied now. */
  unpacked?: { snapshotter: string; chainId: string; applied: number };
}

interface Opened {
  source: ContentSource;
  root: Descriptor;
  /** The image's full name at the source, when it has one. */
  name?: string;
  /** An OCI layout's ref.name (a tag or a full name). */
  refName?: string;
  close(): Promise<void>;
}

/** Give documents without a media type one (store records of old images). */
async function withMediaType(src: ContentSource, d: Descriptor, opts: OpOptions): Promise<Descriptor> {
  if (d.mediaType) return d;
  const doc = parseManifestOrIndex(await src.fetchBytes({ ...d, mediaType: MediaType.OCI_MANIFEST }, opts), { mediaType: '' });
  return { ...d, mediaType: doc.mediaType };
}

async function openSource(loc: ImageLocation, opts: CopyImageOptions): Promise<Opened> {
  const none = async () => {};
  switch (loc.transport) {
    case 'berth': {
      if (!opts.store) throw new BerthError('INVALID_ARGUMENT', 'copying from berth: needs the store');
      const { findImage } = await import('../store/images.js');
      const store = await opts.store();
      const found = await findImage(store, loc.ref);
      return { source: store, root: await withMediaType(store, found.desc, opts), ...(found.record ? { name: found.record.name } : {}), close: none };
    }
    case 'docker': {
      const { openTransport } = await import('../registry/client.js');
      const { Repository } = await import('../registry/registry.js');
      const ref = parseReference(loc.ref);
      const { transport, done } = openTransport(opts);
      try {
        const repo = new Repository(transport, ref);
        const root = await repo.resolve(ref, opts);
        return { source: repo, root, name: fullImageName(loc.ref), close: done };
      } catch (e) {
        await done();
        throw e;
      }
    }
    case 'oci':
    case 'oci-archive':
    case 'docker-archive': {
      const layout = loc.transport === 'oci' ? await LayoutSource.openDir(loc.path) : await LayoutSource.openArchive(loc.path);
      const img = await layout.select(loc.ref);
      return { source: layout, root: img.root, ...(img.name ? { name: img.name } : {}), ...(img.refName ? { refName: img.refName } : {}), close: none };
    }
    case 'containerd': {
      const { ContainerdClient, ContainerdSource } = await import('../containerd/index.js');
      const client = await ContainerdClient.connect({ ...(opts.containerdAddress ? { address: opts.containerdAddress } : {}), namespace: loc.namespace, ...(opts.signal ? { signal: opts.signal } : {}) });
      try {
        const src = new ContainerdSource(client);
        const name = fullImageName(loc.ref);
        return { source: src, root: await src.resolve(name, opts), name, close: async () => client.close() };
      } catch (e) {
        client.close();
        throw e;
      }
    }
  }
}

function strip(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

/** Config and layer digests of the one manifest of a graph (docker-archive's manifest.json). */
function manifestParts(graph: Graph): { config?: Digest; layers?: Digest[] } {
  const m = graph.manifests.length === 1 ? graph.manifests[0]!.manifest : undefined;
  return m ? { config: m.config.digest, layers: m.layers.map((l) => l.digest) } : {};
}

/**
 * Copy the image at `src` to `dst` (both in skopeo's transport syntax, see parseLocation).
 * Into containerd: under a lease, only the blobs containerd lacks are sent (an interrupted blob
 * resumes from containerd's offset), the documents get `ctr import`'s gc labels, the image
 * record is created or updated, and the graph is read back and checked.
 */
export async function copyImage(src: string, dst: string, opts: CopyImageOptions = {}): Promise<CopyImageResult> {
  if (opts.signal) setMaxListeners(256, opts.signal);
  const from = parseLocation(src);
  const to = parseLocation(dst);
  if (opts.unpack && to.transport !== 'containerd') throw new BerthError('INVALID_ARGUMENT', `--unpack needs a containerd: destination, not ${JSON.stringify(dst)}`);
  if (from.transport === 'containerd' || to.transport === 'containerd') (await import('../containerd/index.js')).preloadGrpc();
  const opened = await openSource(from, opts);
  try {
    let root = strip(opened.root);
    const walkOpts = { ...(opts.platform ? { platform: opts.platform } : {}), ...(opts.allPlatforms ? { allPlatforms: true } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
    // One platform asked for: the copy is that platform's manifest (as skopeo does), so the
    // target holds a complete image.
    if (!opts.allPlatforms && isIndex(root.mediaType)) {
      const g = await walk(opened.source, root, walkOpts);
      if (g.manifests.length !== 1) throw new BerthError('NOT_FOUND', `${src} has no manifest for the platform asked for`, { hint: 'pass --platform or --all-platforms' });
      root = strip(g.manifests[0]!.desc);
    }
    // containerd often holds only some platforms of an index (what was pulled): copy what is there.
    const sparse = opts.allPlatforms && from.transport === 'containerd' ? { tolerateMissing: true } : {};
    const copyOpts = { ...walkOpts, ...sparse, concurrency: opts.concurrency ?? 4, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) };
    const sizes = (ds: Descriptor[]) => ds.reduce((n, d) => n + d.size, 0);
    const base = { source: from, destination: to, root };

    switch (to.transport) {
      case 'containerd': {
        const { ContainerdClient, ContainerdTarget, verifyImage, unpackImage } = await import('../containerd/index.js');
        const client = await ContainerdClient.connect({ ...(opts.containerdAddress ? { address: opts.containerdAddress } : {}), namespace: to.namespace, ...(opts.signal ? { signal: opts.signal } : {}) });
        try {
          const name = fullImageName(to.ref);
          const target = new ContainerdTarget(client);
          return await client.withLease(async () => {
            const r = await copy(opened.source, target, root, copyOpts);
            await target.finish(name, root, r.graph, opts);
            const checked = await verifyImage(client, name, root, walkOpts);
            let unpacked: CopyImageResult['unpacked'];
            if (opts.unpack) {
              const snapshotter = typeof opts.unpack === 'string' ? opts.unpack : 'overlayfs';
              const m = checked.manifests.length === 1 ? checked.manifests[0]!.manifest : (await walk(target.source, root, { ...(opts.platform ? { platform: opts.platform } : {}) })).manifests[0]?.manifest;
              if (!m) throw new BerthError('NOT_FOUND', `${src}: no manifest for this platform to unpack`);
              const u = await unpackImage(client, m, snapshotter, opts);
              unpacked = { snapshotter, chainId: u.chainId, applied: u.applied };
            }
            return {
              ...(unpacked ? { unpacked } : {}),
              ...base,
              name,
              sent: { blobs: target.counts.blobsSent, bytes: target.counts.bytesSent },
              existing: { blobs: r.existing.length, bytes: sizes(r.existing) },
              resumedBytes: target.counts.bytesResumed,
              verified: true,
            };
          }, opts);
        } catch (e) {
          throw e instanceof BerthError ? e : client.error(e, `copying ${src} to ${dst}`);
        } finally {
          client.close();
        }
      }
      case 'berth': {
        if (!opts.store) throw new BerthError('INVALID_ARGUMENT', 'copying into berth: needs the store');
        const { tagImage } = await import('../store/images.js');
        const store = await opts.store();
        return await store.withLease(async () => {
          const r = await copy(opened.source, store, root, copyOpts);
          const name = await tagImage(store, to.ref, root);
          return { ...base, name, sent: { blobs: r.copied.length, bytes: sizes(r.copied) }, existing: { blobs: r.existing.length, bytes: sizes(r.existing) }, resumedBytes: 0, verified: false };
        });
      }
      case 'docker': {
        const { openTransport } = await import('../registry/client.js');
        const { Repository } = await import('../registry/registry.js');
        const ref: Reference = parseReference(to.ref);
        const tag = ref.tag ?? (ref.digest ? undefined : 'latest');
        if (ref.digest && ref.digest !== root.digest) throw new BerthError('INVALID_ARGUMENT', `cannot copy to ${dst}: the image is ${root.digest}`, { hint: 'copy to a tag' });
        const { transport, done } = openTransport(opts);
        try {
          const repo = new Repository(transport, ref, { push: true, ...(tag ? { tagRoot: { digest: root.digest, tag } } : {}), transfers: opts.concurrency ?? 4 });
          // registry.ts counts upload bytes with a 'data' listener attached before undici reads
          // the body: with a source stream that has data buffered already (another registry)
          // the first chunks would be lost. Without onProgress it hands the stream over as is.
          const target: ContentTarget = {
            exists: (d, o) => repo.exists(d, o),
            write: (d, content, o = {}) => {
              const { onProgress: _p, ...rest } = o;
              return repo.write(d, content, rest);
            },
          };
          const r = await copy(opened.source, target, root, { ...copyOpts, concurrency: (opts.concurrency ?? 4) * 2 });
          if (tag && r.existing.some((d) => d.digest === root.digest)) await repo.putManifest(root, await opened.source.fetchBytes(root, opts), tag, opts);
          return { ...base, name: fullImageName(to.ref), sent: { blobs: r.copied.length, bytes: sizes(r.copied) }, existing: { blobs: r.existing.length, bytes: sizes(r.existing) }, resumedBytes: 0, verified: false };
        } finally {
          await done();
        }
      }
      case 'oci': {
        const target = new LayoutDirTarget(to.path);
        const r = await copy(opened.source, target, root, copyOpts);
        // oci:DIR:REF takes any REF (skopeo uses tags); only one with a '/' is also an image name.
        const name = to.ref ? (to.ref.includes('/') ? safeFull(to.ref) : undefined) : opened.name;
        await target.finish(root, to.ref ?? opened.refName ?? name, name);
        return { ...base, ...(name ? { name } : {}), sent: { blobs: r.copied.length, bytes: sizes(r.copied) }, existing: { blobs: r.existing.length, bytes: sizes(r.existing) }, resumedBytes: 0, verified: false };
      }
      case 'oci-archive':
      case 'docker-archive': {
        const target = new ArchiveFileTarget(to.path, to.transport === 'oci-archive' ? 'oci' : 'docker', opts.signal);
        try {
          // A tar takes one member at a time: blobs are read one after the other.
          const r = await copy(opened.source, target, root, { ...copyOpts, concurrency: 1 });
          // docker-archive:FILE:REF is an image name; oci-archive's REF is one only with a '/'.
          const name = to.ref ? (to.transport === 'docker-archive' || to.ref.includes('/') ? safeFull(to.ref) : undefined) : opened.name;
          const ref = to.ref ?? (to.transport === 'oci-archive' ? opened.refName : undefined);
          await target.finish({ root, ...(name ? { name } : {}), ...(ref ? { ref } : {}), ...manifestParts(r.graph) });
          return { ...base, ...(name ? { name } : {}), sent: { blobs: r.copied.length, bytes: sizes(r.copied) }, existing: { blobs: 0, bytes: 0 }, resumedBytes: 0, verified: false };
        } catch (e) {
          await target.abort();
          throw e instanceof BerthError ? e : fromSystemError(e, `writing ${to.path}`);
        }
      }
    }
  } finally {
    await opened.close();
  }
}

function safeFull(ref: string): string | undefined {
  try {
    return fullImageName(ref);
  } catch {
    return undefined;
  }
}

export type { ProgressEvent };
