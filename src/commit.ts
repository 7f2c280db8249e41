/**
 * A container's changes: `containerDiff` (docker diff's A/C/D list) and `commitContainer`
 * (docker commit: the changes become one more layer on the container's image). Built on the
 * snapshotter's `diff`, the store's `putLayer` and `commitImage`; containers are read through
 * the run room's `Containers` (find, info) only.
 *
 * Bad input fails before anything is written: an invalid name or --change, a container that
 * does not exist, whose image left the store or whose snapshot was removed behind berth's back.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from './errors.js';
import { applyChanges } from './import/changes.js';
import type { Compression } from './oci/mediatype.js';
import type { OpOptions } from './oci/content.js';
import { MediaType } from './oci/mediatype.js';
import { parseReference } from './oci/reference.js';
import type { Descriptor, Digest, HistoryEntry, ImageConfig } from './oci/types.js';
import type { Containers, ContainerRecord } from './run/containers.js';
import type { Snapshotter } from './snapshot/index.js';
import { commitImage, putLayer } from './store/commit.js';
import { viewImage, type ImageView } from './store/images.js';
import type { ContentStore } from './store/store.js';

export type ChangeKind = 'A' | 'C' | 'D';

export interface ContainerChange {
  /** A added, C changed, D deleted (docker diff's letters). */
  kind: ChangeKind;
  /** Absolute path in the container. */
  path: string;
}

export interface CommitOptions extends OpOptions {
  /** NAME[:TAG] for the new image (none: untagged, as docker commit without a name). */
  name?: string;
  /** Dockerfile instructions applied to the config (docker commit --change). */
  changes?: readonly string[];
  /** History comment (--message). */
  message?: string;
  /** Author (--author). */
  author?: string;
  /** Freeze a running container while its changes are read (default true, as docker). */
  pause?: boolean;
  /** Seconds since 1970 (SOURCE_DATE_EPOCH): the creation time, and mtimes are clamped to it. */
  epoch?: number;
  /** Layer compression (default gzip). */
  compression?: Compression;
}

export interface CommitResult {
  /** Docker's image id: the config digest. */
  imageId: Digest;
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor;
  diffId: Digest;
  names: string[];
}

interface Target {
  id: string;
  record: ContainerRecord;
  running: boolean;
  snap: Snapshotter;
}

/** Find the container and check that its snapshot still exists. */
async function target(containers: Containers, input: string): Promise<Target> {
  const id = await containers.find(input);
  const info = await containers.info(id);
  // The container set's own snapshotter (typed loosely in run/ until it names `Snapshotter`).
  const snap = (await containers.snapshotter()) as unknown as Snapshotter;
  try {
    await snap.stat(info.record.snapshotKey);
  } catch (e) {
    if (e instanceof BerthError && e.code === 'NOT_FOUND') {
      throw new BerthError('NOT_FOUND', `container ${input}: its filesystem (snapshot ${info.record.snapshotKey}) is gone`, {
        cause: e,
        hint: 'it was removed behind berth\'s back; remove the container (berth rm -f)',
      });
    }
    throw e;
  }
  return { id, record: info.record, running: info.status === 'running', snap };
}

/** The container's image (manifest and config) from the store. */
async function baseImage(store: ContentStore, input: string, r: ContainerRecord): Promise<ImageView> {
  const digest = r.image.digest as Digest;
  const size = await store.blobSize(digest);
  if (size === undefined) {
    throw new BerthError('NOT_FOUND', `container ${input}: its image ${r.image.name ?? digest} is no longer in the store`, { hint: 'pull or load the image again' });
  }
  return viewImage(store, { mediaType: '', digest, size });
}

/** Run `fn` with the container frozen when it runs and `pause` is not false. */
async function paused<T>(containers: Containers, t: Target, pause: boolean | undefined, fn: () => Promise<T>): Promise<T> {
  if (!t.running || pause === false) return fn();
  await containers.runc.pause(t.id);
  try {
    return await fn();
  } finally {
    await containers.runc.resume(t.id).catch(() => {});
  }
}

/** docker diff: what changed in the container's filesystem, sorted by path. */
export async function containerDiff(containers: Containers, input: string, opts: { signal?: AbortSignal } = {}): Promise<ContainerChange[]> {
  const t = await target(containers, input);
  const { readTarEntries } = await import('./archive/tar.js');
  const { WHITEOUT_OPAQUE, WHITEOUT_PREFIX } = await import('./archive/layer.js');
  const entries: { kind: 'D' | 'AC'; path: string }[] = [];
  await readTarEntries(await t.snap.diff(t.record.snapshotKey, opts.signal ? { signal: opts.signal } : {}), async (h) => {
    const name = h.name.replace(/\/+$/, '');
    const i = name.lastIndexOf('/');
    const dir = i === -1 ? '' : name.slice(0, i + 1);
    const base = name.slice(i + 1);
    if (base === WHITEOUT_OPAQUE) return;
    if (base.startsWith(WHITEOUT_PREFIX)) entries.push({ kind: 'D', path: '/' + dir + base.slice(WHITEOUT_PREFIX.length) });
    else entries.push({ kind: 'AC', path: '/' + name });
  }, { what: `changes of container ${input}`, ...(opts.signal ? { signal: opts.signal } : {}) });
  // Added or changed: whether the path was in the image, seen through a read-only view of it.
  const key = `diff-${t.id}-${process.pid}-${Date.now()}`;
  const mnt = await mkdtemp(join(tmpdir(), 'berth-diff-'));
  const out: ContainerChange[] = [];
  try {
    await t.snap.view(key, t.record.chainId);
    await t.snap.mount(key, mnt);
    for (const e of entries) {
      if (e.kind === 'D') out.push({ kind: 'D', path: e.path });
      else out.push({ kind: (await lstat(join(mnt, e.path)).then(() => true, () => false)) ? 'C' : 'A', path: e.path });
    }
  } finally {
    await t.snap.unmount(mnt).catch(() => {});
    await t.snap.remove(key).catch(() => {});
    await rm(mnt, { recursive: true, force: true }).catch(() => {});
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** OCI equivalents of Docker layer media types (same bytes): an OCI manifest lists these. */
const OCI_LAYER: Record<string, string> = {
  [MediaType.DOCKER_LAYER]: MediaType.OCI_LAYER,
  [MediaType.DOCKER_LAYER_GZIP]: MediaType.OCI_LAYER_GZIP,
  [MediaType.DOCKER_LAYER_ZSTD]: MediaType.OCI_LAYER_ZSTD,
};

/** Parse SOURCE_DATE_EPOCH-style input: whole seconds since 1970. */
export function parseEpoch(v: string, what = 'SOURCE_DATE_EPOCH'): number {
  if (!/^\d{1,12}$/.test(v.trim())) throw new BerthError('INVALID_ARGUMENT', `${what}=${JSON.stringify(v)} is not a whole number of seconds since 1970`);
  return Number(v.trim());
}

/** docker commit: the container's changes as a new layer on its image, tagged `opts.name`. */
export async function commitContainer(store: ContentStore, containers: Containers, input: string, opts: CommitOptions = {}): Promise<CommitResult> {
  // Everything that can be checked is checked before a byte is written.
  if (opts.name !== undefined) {
    const r = parseReference(opts.name);
    if (r.digest) throw new BerthError('INVALID_ARGUMENT', `invalid image name ${JSON.stringify(opts.name)}: a commit cannot be named by digest`, { hint: 'give NAME[:TAG]' });
  }
  applyChanges({}, opts.changes ?? []); // throws on an invalid --change
  if (opts.epoch !== undefined && !(Number.isInteger(opts.epoch) && opts.epoch >= 0)) throw new BerthError('INVALID_ARGUMENT', `epoch ${opts.epoch} is not a whole number of seconds`);
  const t = await target(containers, input);
  const base = await baseImage(store, input, t.record);

  return store.withLease(async () => {
    const { descriptor, diffId } = await paused(containers, t, opts.pause, async () =>
      putLayer(store, await t.snap.diff(t.record.snapshotKey, { ...(opts.epoch !== undefined ? { epoch: opts.epoch } : {}), ...(opts.signal ? { signal: opts.signal } : {}) }), {
        compression: opts.compression ?? 'gzip',
        what: `changes of container ${input}`,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      }),
    );
    const created = opts.epoch !== undefined ? new Date(opts.epoch * 1000).toISOString() : new Date().toISOString();
    const history: HistoryEntry = {
      created,
      created_by: t.record.args.join(' '),
      ...(opts.author ? { author: opts.author } : {}),
      ...(opts.message ? { comment: opts.message } : {}),
    };
    const c = base.config;
    const config: ImageConfig = {
      ...c,
      created,
      ...(opts.author ? { author: opts.author } : {}),
      config: applyChanges(c.config ?? {}, opts.changes ?? []),
      rootfs: { type: 'layers', diff_ids: [...c.rootfs.diff_ids, diffId] },
      history: [...(c.history ?? []), history],
    };
    const layers = [...base.manifest.layers.map((l) => ({ ...l, mediaType: OCI_LAYER[l.mediaType] ?? l.mediaType })), descriptor];
    const img = await commitImage(store, { config, layers, ...(opts.name !== undefined ? { name: opts.name } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    return { imageId: img.imageId, manifest: img.manifest, config: img.config, layer: descriptor, diffId, names: img.names };
  });
}
