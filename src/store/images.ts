import { BerthError } from '../errors.js';
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
 * One entry of the store's index.json: a named image (a tag) or an untagged one (docker's
 * `<none>:<none>`, a "dangling" image: imported or loaded without a name, or left behind when its
 * tag moved to another image). `order` is the position in index.json (later = newer).
 */
export interface ImageEntry {
  name?: string;
  desc: Descriptor;
  order: number;
}

/** Every image of the store, tagged and untagged, in index.json order. */
export async function listImageEntries(store: ContentStore): Promise<ImageEntry[]> {
  const idx = await store.readIndex();
  return idx.manifests.map((m, order) => {
    const name = nameOf(m);
    return { ...(name ? { name } : {}), desc: m, order };
  });
}

function plainDesc(desc: Descriptor): Descriptor {
  const { platform: _p, annotations, ...plain } = desc;
  const rest = { ...(annotations ?? {}) };
  delete rest[Annotation.REF_NAME];
  delete rest[Annotation.CONTAINERD_NAME];
  return Object.keys(rest).length ? { ...plain, annotations: rest } : plain;
}

/**
 * Keep `desc` as an image even without a name (as docker keeps an untagged image): adds an
 * unnamed index.json entry unless some entry already points at it. Content an entry points at
 * is never collected; `image prune` removes unnamed entries no container uses.
 */
export async function keepImage(store: ContentStore, desc: Descriptor): Promise<void> {
  await store.updateIndex((ms) => {
    if (!ms.some((m) => m.digest === desc.digest)) ms.push(plainDesc(desc));
  });
}

/**
 * Point `name` (normalised here) at `desc`, replacing what it pointed at; returns the full name.
 * `NAME[:TAG]` (latest by default) is a tag; a digest-only reference `NAME@DIGEST` (an image
 * pulled by digest) is recorded as it is, and its digest must be `desc`'s; `NAME:TAG@DIGEST`
 * tags NAME:TAG after checking the digest. An unnamed entry of `desc` is dropped (it has a name
 * now); the image the name leaves stays as an untagged image when nothing else names it, as in
 * docker.
 */
export async function tag(store: ContentStore, name: string, desc: Descriptor): Promise<string> {
  const ref = parseReference(name);
  if (ref.digest && ref.digest !== desc.digest) {
    throw new BerthError('INVALID_ARGUMENT', `cannot name ${desc.digest} ${JSON.stringify(name)}: the reference names another digest`);
  }
  const full = ref.tag === undefined && ref.digest ? formatReference({ domain: ref.domain, path: ref.path, digest: ref.digest }) : formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' });
  if (!(await store.has(desc))) throw new BerthError('NOT_FOUND', `cannot tag ${full}: ${desc.digest} is not in the store`);
  const plain = plainDesc(desc);
  await store.updateIndex((ms) => {
    const i = ms.findIndex((m) => nameOf(m) === full);
    const entry = annotateName(plain, full);
    const old = i === -1 ? undefined : ms[i]!;
    if (i === -1) ms.push(entry);
    else ms[i] = entry;
    for (let j = ms.length - 1; j >= 0; j--) if (ms[j]!.digest === desc.digest && !nameOf(ms[j]!)) ms.splice(j, 1);
    if (old && old.digest !== desc.digest && !ms.some((m) => m.digest === old.digest)) ms.push(plainDesc(old));
  });
  return full;
}

/**
 * `tag` for a user-given target, which must be a tag (docker refuses to create a digest
 * reference).
 */
export async function tagImage(store: ContentStore, name: string, desc: Descriptor): Promise<string> {
  const ref = parseReference(name);
  if (ref.digest && !ref.tag) throw new BerthError('INVALID_ARGUMENT', `cannot tag with a digest reference ${JSON.stringify(name)}`, { hint: 'give a name:tag' });
  return tag(store, formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' }), desc);
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

/** Input that can only be an image id or digest: `sha256:` + hex, or 64 hex characters. */
export function isImageIdInput(input: string): boolean {
  return /^sha256:[a-f0-9]{1,64}$/.test(input) || /^[a-f0-9]{64}$/.test(input);
}

/** Input that may be an image id prefix (docker takes any unique prefix; names are tried first). */
function maybeIdPrefix(input: string): string | undefined {
  const m = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(input);
  return m?.[1];
}

/** What `findImage` found. */
export interface FoundImage {
  /** The named entry chosen, when the image has a name. */
  record?: ImageRecord;
  /** The root (index or manifest) the verb acts on. */
  desc: Descriptor;
  /** Named entries that the input designates (all tags of the image for an id). */
  matches: ImageRecord[];
  /** Every entry (named and untagged) that the input designates. */
  entries: ImageEntry[];
  /** Docker's image id (the config digest) when the input was resolved as an id. */
  id?: Digest;
  /** How the input was read. */
  by: 'name' | 'id' | 'digest';
}

/** The config digest of an entry's image for this host (docker's image id), or undefined. */
export async function imageIdOf(store: ContentStore, desc: Descriptor): Promise<Digest | undefined> {
  try {
    return (await viewImage(store, desc)).configDesc.digest;
  } catch {
    return undefined;
  }
}

function toRecord(e: ImageEntry): ImageRecord | undefined {
  return e.name ? { name: e.name, desc: e.desc } : undefined;
}

/** Tagged before untagged, then the newest (latest in index.json) first. */
function preferred(a: ImageEntry, b: ImageEntry): number {
  return (a.name ? 0 : 1) - (b.name ? 0 : 1) || b.order - a.order;
}

/**
 * Find what a user-given name means, as docker does:
 *  - a tag (`alpine`, `host/a:b`) or `name@digest`;
 *  - an image id: the config digest (full, `sha256:`-prefixed or a unique prefix of 4+ hex
 *    characters) — names are tried first, so an image named `cafe` still wins over an id prefix;
 *  - a manifest (or index) digest, full or a prefix.
 * Several manifests may share one config (the same image loaded twice with different layer
 * compression): they are one image id; the answer is the tagged, then the most recent entry,
 * and `entries` lists them all (`rmi` acts on all). A prefix that matches two different ids is
 * ambiguous. Never reaches a registry.
 */
export async function findImage(store: ContentStore, input: string): Promise<FoundImage> {
  const entries = await listImageEntries(store);
  const named = entries.filter((e) => e.name);
  const hex = maybeIdPrefix(input);
  if (!isImageIdInput(input)) {
    const ref = parseReference(input);
    if (ref.tag !== undefined) {
      const full = formatReference({ domain: ref.domain, path: ref.path, tag: ref.tag });
      const e = named.find((r) => r.name === full);
      if (e) {
        if (ref.digest && e.desc.digest !== ref.digest) throw new BerthError('NOT_FOUND', `no such image: ${input} (the tag points at ${e.desc.digest})`);
        return { record: toRecord(e)!, desc: e.desc, matches: [toRecord(e)!], entries: [e], by: 'name' };
      }
    }
    if (ref.digest) {
      const repo = `${ref.domain}/${ref.path}`;
      const es = named.filter((r) => r.desc.digest === ref.digest && (r.name!.startsWith(repo + ':') || r.name === `${repo}@${ref.digest}`)).sort(preferred);
      if (es.length > 0) return { record: toRecord(es[0]!)!, desc: es[0]!.desc, matches: es.map((e) => toRecord(e)!), entries: es, by: 'digest' };
      if (await store.has({ digest: ref.digest })) {
        return { desc: { mediaType: '', digest: ref.digest, size: (await store.blobSize(ref.digest))! }, matches: [], entries: [], by: 'digest' };
      }
    }
    if (hex === undefined) throw new BerthError('NOT_FOUND', `no such image: ${familiarString(ref)}`, { hint: 'pull or load it first (berth images lists what the store has)' });
  }
  if (hex !== undefined) {
    // A manifest digest (root of an entry): exact or prefix.
    const byRoot = entries.filter((e) => e.desc.digest.slice(7).startsWith(hex));
    const ids = new Map<ImageEntry, Digest | undefined>();
    for (const e of entries) ids.set(e, await imageIdOf(store, e.desc));
    const byId = entries.filter((e) => ids.get(e)?.slice(7).startsWith(hex));
    const roots = new Set(byRoot.map((e) => e.desc.digest));
    if (!(hex.length === 64 && roots.size === 1)) {
      // One image id is one answer, however many manifests carry it.
      const distinct = new Set([...byRoot, ...byId].map((e) => ids.get(e) ?? e.desc.digest));
      if (distinct.size > 1) throw new BerthError('INVALID_ARGUMENT', `image id prefix ${input} is ambiguous (${[...distinct].map((d) => d.slice(7, 19)).join(', ')})`, { hint: 'give more characters' });
    }
    if (roots.size === 1 && (hex.length === 64 || byId.length === 0)) {
      const es = byRoot.sort(preferred);
      const id = ids.get(es[0]!);
      return { ...(es[0]!.name ? { record: toRecord(es[0]!)! } : {}), desc: es[0]!.desc, matches: es.flatMap((e) => toRecord(e) ?? []), entries: es, by: 'digest', ...(id ? { id } : {}) };
    }
    if (byId.length > 0 || byRoot.length > 0) {
      const id = ids.get(byId[0] ?? byRoot[0]!)!;
      const es = entries.filter((e) => ids.get(e) === id).sort(preferred);
      return { ...(es[0]!.name ? { record: toRecord(es[0]!)! } : {}), desc: es[0]!.desc, matches: es.flatMap((e) => toRecord(e) ?? []), entries: es, id, by: 'id' };
    }
    if (hex.length === 64 && (await store.has({ digest: `sha256:${hex}` }))) {
      // A manifest that is in the store without an entry of its own (a platform's manifest of an index).
      const digest = `sha256:${hex}` as Digest;
      return { desc: { mediaType: '', digest, size: (await store.blobSize(digest))! }, matches: [], entries: [], by: 'digest' };
    }
  }
  throw new BerthError('NOT_FOUND', `no such image: ${input}`, { hint: 'see berth images' });
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

/** What `removeImage` did, in docker's words. */
export interface RemoveResult {
  /** Names removed (full normalised). */
  untagged: string[];
  /** Image ids (config digests) whose last entry went: the image is gone (its blobs follow). */
  deleted: Digest[];
  /** Root digests of entries removed (for the blob collection that follows). */
  roots: Descriptor[];
  /** Back-compat: the root digest acted on. */
  digest: Digest;
}

/**
 * `rmi` as docker does it. By name: remove that tag; when it was the image's last name the image
 * is deleted. By id or digest: every entry of the image (refused when it has several names,
 * unless forced). An image a container uses is only untagged (it stays as `<none>`) unless forced.
 */
export async function removeImage(store: ContentStore, input: string, opts: { force?: boolean; inUse?: (digest: string) => Promise<string | undefined> } = {}): Promise<RemoveResult> {
  const found = await findImage(store, input);
  const targets = found.entries;
  if (targets.length === 0) throw new BerthError('NOT_FOUND', `no such image: ${input}`, { hint: 'see berth images' });
  const names = [...new Set(targets.flatMap((t) => (t.name ? [t.name] : [])))];
  if (found.by !== 'name' && names.length > 1 && !opts.force) {
    throw new BerthError('INVALID_ARGUMENT', `image ${input} is referenced by ${names.length} tags (${names.join(', ')})`, {
      hint: 'remove the tags one by one or use -f',
    });
  }
  const all = await listImageEntries(store);
  const roots = new Set(targets.map((t) => t.desc.digest));
  const remaining = all.filter((e) => roots.has(e.desc.digest) && !targets.some((t) => t.order === e.order));
  const gone = [...roots].filter((r) => !remaining.some((e) => e.desc.digest === r));
  let user: string | undefined;
  if (gone.length > 0 && opts.inUse) {
    for (const r of gone) user ??= await opts.inUse(r);
    if (user && !opts.force) throw new BerthError('ALREADY_EXISTS', `image ${input} is in use by container ${user}`, { hint: 'remove the container first, or use -f' });
  }
  const ids = new Map<string, Digest | undefined>();
  for (const r of gone) ids.set(r, await imageIdOf(store, targets.find((t) => t.desc.digest === r)!.desc));
  const removedRoots: Descriptor[] = [];
  await store.updateIndex((ms) => {
    const targetNames = new Set(names);
    for (let j = ms.length - 1; j >= 0; j--) {
      const m = ms[j]!;
      const n = nameOf(m);
      if (!roots.has(m.digest)) continue;
      if (n ? targetNames.has(n) : targets.some((t) => !t.name && t.desc.digest === m.digest)) {
        ms.splice(j, 1);
        if (!removedRoots.some((d) => d.digest === m.digest)) removedRoots.push(plainDesc(m));
      }
    }
    // Forced off an image a container runs: it stays, untagged, as docker leaves it.
    if (user) for (const r of gone) if (!ms.some((m) => m.digest === r)) ms.push(plainDesc(removedRoots.find((d) => d.digest === r)!));
  });
  // An id is deleted when no entry is left with it (another manifest of the same config keeps it).
  const left = new Set<string>();
  if (!user) for (const e of await listImageEntries(store)) left.add((await imageIdOf(store, e.desc)) ?? e.desc.digest);
  const deleted = user ? [] : [...new Set(gone.map((r) => ids.get(r) ?? (r as Digest)))].filter((id) => !left.has(id));
  return { untagged: names, deleted, roots: user ? [] : removedRoots.filter((d) => gone.includes(d.digest)), digest: found.desc.digest };
}
