import { BerthError } from '../errors.js';
import { isDigest } from '../oci/digest.js';
import { parseImageConfig, parseManifestOrIndex } from '../oci/manifest.js';
import { formatPlatform, hostPlatform } from '../oci/platform.js';
import { familiarString, formatReference, parseReference } from '../oci/reference.js';
import type { Descriptor, Digest, ImageConfig, Index, Manifest, Platform } from '../oci/types.js';
import { Annotation } from '../oci/types.js';
import { selectChildren } from '../oci/walk.js';
import type { ContentStore, ImageRecord } from './store.js';

/** A name resolved to one runnable image (a manifest and its config) for a platform. */
export interface ImageView {
  /** Full normalised name, when the image was named by a tag. */
  name?: string;
  /** What index.json points at (an index or a manifest). */
  root: Descriptor;
  manifestDesc: Descriptor;
  manifest: Manifest;
  configDesc: Descriptor;
  config: ImageConfig;
}

/** Annotate a descriptor with the image name as OCI layouts and containerd expect. */
export function annotateName(desc: Descriptor, name: string): Descriptor {
  const { annotations, ...rest } = desc;
  return { ...rest, annotations: { ...(annotations ?? {}), [Annotation.REF_NAME]: name, [Annotation.CONTAINERD_NAME]: name } };
}

function nameOf(d: Descriptor): string | undefined {
  return d.annotations?.[Annotation.CONTAINERD_NAME] ?? d.annotations?.[Annotation.REF_NAME];
}

/**
 * Point `name` (normalised here) at `desc`, replacing what it pointed at; returns the full name.
 * `NAME[:TAG]` (latest by default) is a tag; a digest-only reference `NAME@DIGEST` (an image
 * pulled by digest) is recorded as it is, and its digest must be `desc`'s; `NAME:TAG@DIGEST`
 * tags NAME:TAG after checking the digest.
 */
export async function tag(store: ContentStore, name: string, desc: Descriptor): Promise<string> {
  const ref = parseReference(name);
  if (ref.digest && ref.digest !== desc.digest) {
    throw new BerthError('INVALID_ARGUMENT', `cannot name ${desc.digest} ${JSON.stringify(name)}: the reference names another digest`);
  }
  const full = ref.tag === undefined && ref.digest ? formatReference({ domain: ref.domain, path: ref.path, digest: ref.digest }) : formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' });
  return putName(store, full, desc);
}

/**
 * Point `name` at `desc`: `tag` for a user-given target, which must be a tag (docker refuses
 * to create a digest reference).
 */
export async function tagImage(store: ContentStore, name: string, desc: Descriptor): Promise<string> {
  const ref = parseReference(name);
  if (ref.digest && !ref.tag) throw new BerthError('INVALID_ARGUMENT', `cannot tag with a digest reference ${JSON.stringify(name)}`, { hint: 'give a name:tag' });
  return tag(store, formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' }), desc);
}

async function putName(store: ContentStore, full: string, desc: Descriptor): Promise<string> {
  if (!(await store.has(desc))) throw new BerthError('NOT_FOUND', `cannot tag ${full}: ${desc.digest} is not in the store`);
  const { platform: _p, ...plain } = desc;
  await store.updateIndex((ms) => {
    const i = ms.findIndex((m) => nameOf(m) === full);
    const entry = annotateName(plain, full);
    if (i === -1) ms.push(entry);
    else ms[i] = entry;
  });
  return full;
}

/** Remove a name; returns the descriptor it pointed at, or undefined. */
export async function untagImage(store: ContentStore, name: string): Promise<Descriptor | undefined> {
  const full = formatReference(parseReference(name));
  return store.updateIndex((ms) => {
    const i = ms.findIndex((m) => nameOf(m) === full);
    if (i === -1) return undefined;
    const [d] = ms.splice(i, 1);
    return d;
  });
}

/**
 * Find what a user-given name means: a tag (`alpine`, `host/a:b`), `name@digest`, a root digest,
 * a config digest (docker's image id) or an unambiguous prefix of one (12+ hex characters).
 */
export async function findImage(store: ContentStore, input: string): Promise<{ record?: ImageRecord; desc: Descriptor; matches: ImageRecord[] }> {
  const images = await store.listImages();
  const hex = input.startsWith('sha256:') ? input.slice(7) : input;
  if (/^[a-f0-9]{12,64}$/.test(hex)) {
    const byRoot = images.filter((r) => r.desc.digest.slice(7).startsWith(hex));
    const roots = new Set(byRoot.map((r) => r.desc.digest));
    if (roots.size === 1) return { record: byRoot[0]!, desc: byRoot[0]!.desc, matches: byRoot };
    if (roots.size > 1) throw new BerthError('INVALID_ARGUMENT', `image id prefix ${input} is ambiguous`, { hint: 'give more characters' });
    // Docker's image id is the config digest: look through each image's config.
    const byConfig: ImageRecord[] = [];
    for (const r of images) {
      try {
        const v = await viewImage(store, r.desc);
        if (v.configDesc.digest.slice(7).startsWith(hex)) byConfig.push(r);
      } catch {
        /* unreadable images cannot match */
      }
    }
    const cfgRoots = new Set(byConfig.map((r) => r.desc.digest));
    if (cfgRoots.size === 1) return { record: byConfig[0]!, desc: byConfig[0]!.desc, matches: byConfig };
    if (cfgRoots.size > 1) throw new BerthError('INVALID_ARGUMENT', `image id prefix ${input} is ambiguous`, { hint: 'give more characters' });
    if (isDigest(input) && (await store.has({ digest: input }))) {
      // An untagged but present manifest.
      return { desc: { mediaType: '', digest: input, size: (await store.blobSize(input))! }, matches: [] };
    }
    if (!/^[a-z0-9]/.test(input) || input.startsWith('sha256:')) {
      throw new BerthError('NOT_FOUND', `no such image: ${input}`, { hint: 'see berth images' });
    }
  }
  const ref = parseReference(input);
  const repo = `${ref.domain}/${ref.path}`;
  if (ref.tag !== undefined) {
    const full = formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag });
    const rec = images.find((r) => r.name === full);
    if (rec) {
      if (ref.digest && rec.desc.digest !== ref.digest) throw new BerthError('NOT_FOUND', `no such image: ${input} (the tag points at ${rec.desc.digest})`);
      return { record: rec, desc: rec.desc, matches: [rec] };
    }
  }
  if (ref.digest) {
    const recs = images.filter((r) => r.desc.digest === ref.digest && (r.name.startsWith(repo + ':') || r.name === `${repo}@${ref.digest}`));
    if (recs.length > 0) return { record: recs[0]!, desc: recs[0]!.desc, matches: recs };
    if (await store.has({ digest: ref.digest })) {
      return { desc: { mediaType: '', digest: ref.digest, size: (await store.blobSize(ref.digest))! }, matches: [] };
    }
  }
  throw new BerthError('NOT_FOUND', `no such image: ${familiarString(ref)}`, { hint: 'pull or load it first (berth images lists what the store has)' });
}

/** Resolve a root descriptor (index or manifest) to one image for `platform` (default: host). */
export async function viewImage(store: ContentStore, root: Descriptor, platform?: Platform): Promise<ImageView> {
  let desc = root;
  let bytes = await store.fetchBytes(desc);
  for (let depth = 0; ; depth++) {
    // A descriptor whose media type is not known ('' for a bare digest) takes the document's own.
    const doc = parseManifestOrIndex(bytes, desc);
    if (doc.kind === 'manifest') {
      const manifestDesc = desc.mediaType === doc.mediaType ? desc : { ...desc, mediaType: doc.mediaType };
      const configDesc = doc.manifest.config;
      const config = parseImageConfig(await store.fetchBytes(configDesc), `image config ${configDesc.digest}`);
      const name = nameOf(root);
      return { ...(name ? { name } : {}), root, manifestDesc, manifest: doc.manifest, configDesc, config };
    }
    if (depth > 8) throw new BerthError('INVALID_ARGUMENT', `index ${root.digest} nests too deep`);
    const present: Index = { ...doc.index, manifests: [] };
    const candidates: Descriptor[] = [];
    for (const m of doc.index.manifests) if (await store.has(m)) candidates.push(m);
    const { keep } = selectChildren({ ...present, manifests: candidates }, platform ? { platform } : {});
    const next = keep[0];
    if (!next) {
      throw new BerthError('NOT_FOUND', `image ${nameOf(root) ?? root.digest} has no manifest for ${formatPlatform(platform ?? hostPlatform())} in the store`, {
        hint: 'pull it with --platform, or choose another --platform',
      });
    }
    desc = next;
    bytes = await store.fetchBytes(desc);
  }
}

/** Find and view in one step. */
export async function getImage(store: ContentStore, input: string, platform?: Platform): Promise<ImageView> {
  const found = await findImage(store, input);
  const v = await viewImage(store, found.desc, platform);
  if (found.record) v.name = found.record.name;
  return v;
}

export type { Digest };

export interface ImageSummary {
  /** Full normalised name. */
  name: string;
  /** Docker-style repository and tag (`alpine`, `latest`). */
  repository: string;
  tag: string;
  /** What the name points at (index or manifest). */
  digest: Digest;
  /** Docker's image id: the config digest (of the host platform's image). */
  id?: Digest;
  created?: string;
  /** Bytes of content of the selected image (manifest + config + layers as stored). */
  size: number;
  platform?: string;
  mediaType: string;
}

/** One row per tag, for `berth images`. */
export async function listImageSummaries(store: ContentStore): Promise<ImageSummary[]> {
  const out: ImageSummary[] = [];
  for (const r of await store.listImages()) {
    let repository = r.name;
    let tag = '<none>';
    try {
      const ref = parseReference(r.name);
      repository = familiarString({ domain: ref.domain, path: ref.path });
      tag = ref.tag ?? '<none>';
    } catch {
      /* names written by other tools may not parse: show them as they are */
    }
    const row: ImageSummary = { name: r.name, repository, tag, digest: r.desc.digest, size: r.desc.size, mediaType: r.desc.mediaType };
    try {
      const v = await viewImage(store, r.desc);
      row.id = v.configDesc.digest;
      if (v.config.created) row.created = v.config.created;
      row.platform = formatPlatform({ os: v.config.os, architecture: v.config.architecture, ...(v.config.variant ? { variant: v.config.variant } : {}) });
      row.size = (r.desc.digest === v.manifestDesc.digest ? 0 : r.desc.size) + v.manifestDesc.size + v.configDesc.size + v.manifest.layers.reduce((a, l) => a + l.size, 0);
    } catch {
      /* an image of another platform only, or a broken one: listed with what is known */
    }
    out.push(row);
  }
  return out;
}

/**
 * Remove names (and, by gc later, their content). Names an image by tag, digest or id; an id
 * or digest removes every tag of that image (docker refuses when several tags unless forced).
 */
export async function removeImage(store: ContentStore, input: string, opts: { force?: boolean; inUse?: (digest: string) => Promise<string | undefined> } = {}): Promise<{ untagged: string[]; digest: Digest }> {
  const found = await findImage(store, input);
  const byName = found.record && !looksLikeId(input);
  const targets = byName ? [found.record!] : found.matches;
  if (targets.length === 0) throw new BerthError('NOT_FOUND', `no such image: ${input}`, { hint: 'see berth images' });
  if (!byName && targets.length > 1 && !opts.force) {
    throw new BerthError('INVALID_ARGUMENT', `image ${input} is referenced by ${targets.length} tags (${targets.map((t) => t.name).join(', ')})`, {
      hint: 'remove the tags one by one or use -f',
    });
  }
  const all = await store.listImages();
  const lastTag = all.filter((r) => r.desc.digest === found.desc.digest).length <= targets.length;
  if (lastTag && opts.inUse && !opts.force) {
    const user = await opts.inUse(found.desc.digest);
    if (user) throw new BerthError('ALREADY_EXISTS', `image ${input} is in use by container ${user}`, { hint: 'remove the container first, or use -f' });
  }
  const untagged: string[] = [];
  for (const t of targets) {
    const d = await untagImage(store, t.name);
    if (d) untagged.push(t.name);
  }
  return { untagged, digest: found.desc.digest };
}

function looksLikeId(input: string): boolean {
  return /^(sha256:)?[a-f0-9]{12,64}$/.test(input);
}
