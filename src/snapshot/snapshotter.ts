/**
 * Snapshots in containerd's vocabulary, on disk under <root>/snapshots:
 *
 *   c/<id>/fs          a committed snapshot: one layer unpacked with overlay whiteouts
 *   c/<id>/meta.json   {name, parent, diffId?, created}; for layers name = the chain id
 *   a/<id>/            an active snapshot: meta.json, upper/ + work/ (overlay) or fs/ (copy)
 *   tmp/               unpacks and commits in progress (renamed into c/ when complete)
 *
 * <id> is the first 16 hex digits of sha256(name or key): short, so that an overlay mount of a
 * long chain fits the one-page limit of mount options. The mount gives lowerdirs relative to
 * the snapshots directory (mount(2) runs with that as its working directory), about 22 bytes
 * per layer: about 180 layers fit; more fail with a clear error.
 *
 * chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + ' ' + diffID(Ln)).
 *
 * Drivers: 'overlay' mounts the chain with the active snapshot's upper/work dirs; 'copy' (when
 * overlay is unavailable, or BERTH_SNAPSHOTTER=copy) copies the chain into the active
 * snapshot's fs/ at prepare time, applying whiteouts, and bind-mounts it.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, rmSync as rmSyncFs } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { native, MNT_DETACH } from '../archive/native.js';
import { BerthError, fromSystemError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import { layerCompression } from '../oci/mediatype.js';
import type { Digest } from '../oci/types.js';
import type { ImageView } from '../store/images.js';
import type { ContentStore } from '../store/store.js';
import { withLock } from '../store/lock.js';

const execFileP = promisify(execFile);

export type SnapshotDriver = 'overlay' | 'copy';

export interface SnapshotInfo {
  kind: 'committed' | 'active';
  /** The committed snapshot's name (a chain id for layers) or the active snapshot's key. */
  key: string;
  parent?: string;
  created: string;
  driver?: SnapshotDriver;
}

interface Meta {
  kind: 'committed' | 'active';
  key: string;
  parent?: string;
  diffId?: string;
  created: string;
  driver?: SnapshotDriver;
}

/** The chain ids of a list of diff ids (one per layer). */
export function chainIds(diffIds: readonly string[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? (d as Digest) : (`sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}` as Digest));
  }
  return out;
}

function idOf(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 16);
}

const PAGE = 4096;

export class Snapshotter {
  readonly dir: string;
  readonly #driverPref: SnapshotDriver | undefined;
  #driver: Promise<SnapshotDriver> | undefined;

  private constructor(root: string, driver?: SnapshotDriver) {
    this.dir = join(root, 'snapshots');
    this.#driverPref = driver;
  }

  /** Open the snapshotter under `<root>/snapshots`. The driver defaults to overlay when it works. */
  static async open(root: string, opts: { driver?: SnapshotDriver } = {}): Promise<Snapshotter> {
    const env = process.env.BERTH_SNAPSHOTTER;
    if (env !== undefined && env !== '' && env !== 'overlay' && env !== 'copy') {
      throw new BerthError('INVALID_ARGUMENT', `BERTH_SNAPSHOTTER=${env} is not a snapshotter`, { hint: "use 'overlay' or 'copy'" });
    }
    const s = new Snapshotter(root, opts.driver ?? ((env || undefined) as SnapshotDriver | undefined));
    try {
      for (const d of ['c', 'a', 'tmp', 'empty']) await mkdir(join(s.dir, d), { recursive: true, mode: 0o700 });
    } catch (e) {
      throw fromSystemError(e, `opening ${s.dir}`);
    }
    return s;
  }

  /** The driver in use: the preference, else overlay when a probe mount works, else copy. */
  driver(): Promise<SnapshotDriver> {
    return (this.#driver ??= this.#driverPref ? Promise.resolve(this.#driverPref) : this.#probe());
  }

  async #probe(): Promise<SnapshotDriver> {
    const t = join(this.dir, 'tmp', `probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(t, d), { recursive: true });
      native().mount('overlay', join(t, 'm'), 'overlay', 0, `lowerdir=${t}/l,upperdir=${t}/u,workdir=${t}/w`);
      native().umount2(join(t, 'm'), MNT_DETACH);
      return 'overlay';
    } catch {
      return 'copy';
    } finally {
      await rm(t, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** Directory of an active snapshot (by key) or a committed one (by name), for measuring. */
  pathOf(kind: 'active' | 'committed', key: string): string {
    return kind === 'active' ? this.#activeDir(key) : this.#committedDir(key);
  }

  #committedDir(name: string): string {
    return join(this.dir, 'c', idOf(name));
  }

  #activeDir(key: string): string {
    return join(this.dir, 'a', idOf(key));
  }

  async #meta(dir: string): Promise<Meta | undefined> {
    try {
      return JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as Meta;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fromSystemError(e, `reading snapshot ${dir}`);
    }
  }

  /** Whether a committed snapshot by that name exists. */
  async has(name: string): Promise<boolean> {
    const m = await this.#meta(this.#committedDir(name));
    return m?.key === name;
  }

  /**
   * Unpack every layer of an image that is not unpacked yet, each into its own committed
   * snapshot keyed by chain id, verifying diff_ids against the config. Returns the top chain id.
   */
  async unpackImage(store: ContentStore, view: ImageView, opts: OpOptions = {}): Promise<{ chainId: string }> {
    const layers = view.manifest.layers;
    const diffIds = view.config.rootfs?.diff_ids ?? [];
    const img = view.name ?? view.manifestDesc.digest;
    if (layers.length !== diffIds.length) {
      throw new BerthError('INVALID_ARGUMENT', `image ${img}: ${layers.length} layers but ${diffIds.length} diff_ids in the config`);
    }
    if (layers.length === 0) throw new BerthError('INVALID_ARGUMENT', `image ${img} has no layers`);
    const chain = chainIds(diffIds);
    for (let i = 0; i < layers.length; i++) {
      const chainId = chain[i]!;
      if (await this.has(chainId)) continue;
      const layer = layers[i]!;
      const compression = layerCompression(layer.mediaType);
      if (compression === undefined) {
        throw new BerthError('UNSUPPORTED', `image ${img}: layer ${layer.digest} has media type ${layer.mediaType}, which is not a layer berth can unpack`);
      }
      const what = `layer ${layer.digest}`;
      const tmp = join(this.dir, 'tmp', `unpack-${process.pid}-${randomBytes(6).toString('hex')}`);
      try {
        await mkdir(join(tmp, 'fs'), { recursive: true, mode: 0o755 });
        opts.onProgress?.({ type: 'blob-start', digest: layer.digest, size: layer.size, mediaType: layer.mediaType, id: 'unpack' });
        // Loaded on first unpack only: a warm `berth run` never needs the tar reader.
        const { applyLayer } = await import('../archive/apply.js');
        const res = await applyLayer(await store.fetch(layer), join(tmp, 'fs'), {
          whiteouts: 'overlay',
          compression,
          what,
          size: layer.size,
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.onProgress ? { onProgress: (e) => opts.onProgress!(e.type === 'blob-progress' ? { ...e, digest: layer.digest } : e) } : {}),
        });
        if (res.diffId !== diffIds[i]) {
          throw new BerthError('DIGEST_MISMATCH', `${what}: uncompressed digest ${res.diffId} does not match the config's diff_id ${diffIds[i]}`, {
            hint: 'the image is corrupt; pull or load it again',
          });
        }
        const meta: Meta = { kind: 'committed', key: chainId, ...(i > 0 ? { parent: chain[i - 1]! } : {}), diffId: res.diffId, created: new Date().toISOString() };
        await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta));
        await this.#publish(tmp, this.#committedDir(chainId));
        opts.onProgress?.({ type: 'blob-done', digest: layer.digest, size: layer.size });
      } catch (e) {
        await rm(tmp, { recursive: true, force: true }).catch(() => {});
        throw e instanceof BerthError ? e : fromSystemError(e, `unpacking ${what}`);
      }
    }
    return { chainId: chain[chain.length - 1]! };
  }

  /** Rename a complete tmp dir into place; when another unpack got there first, keep theirs. */
  async #publish(tmp: string, dest: string): Promise<void> {
    try {
      await rename(tmp, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTEMPTY') {
        await rm(tmp, { recursive: true, force: true });
        return;
      }
      throw e;
    }
  }

  /** The committed chain from `name` down to the base layer (top first). */
  async #chain(name: string | undefined): Promise<{ name: string; fs: string; rel: string }[]> {
    const out: { name: string; fs: string; rel: string }[] = [];
    for (let cur = name; cur !== undefined; ) {
      const dir = this.#committedDir(cur);
      const m = await this.#meta(dir);
      if (!m || m.key !== cur || m.kind !== 'committed') throw new BerthError('NOT_FOUND', `snapshot ${cur} does not exist`, { hint: 'unpack the image again' });
      out.push({ name: cur, fs: join(dir, 'fs'), rel: `c/${idOf(cur)}/fs` });
      if (out.length > 1000) throw new BerthError('INTERNAL', `snapshot ${name}: parent chain loops`);
      cur = m.parent;
    }
    return out;
  }

  /** Create an active snapshot `key` on top of the committed `parent` (or empty). */
  async prepare(key: string, parent: string | undefined, _opts: OpOptions = {}): Promise<void> {
    if (!key) throw new BerthError('INVALID_ARGUMENT', 'snapshot key must not be empty');
    const driver = await this.driver();
    const dest = this.#activeDir(key);
    await withLock(join(this.dir, 'lock'), async () => {
      if (await this.#meta(dest)) throw new BerthError('ALREADY_EXISTS', `snapshot ${key} already exists`);
      const chain = await this.#chain(parent);
      const tmp = join(this.dir, 'tmp', `prepare-${process.pid}-${randomBytes(6).toString('hex')}`);
      try {
        if (driver === 'overlay') {
          await mkdir(join(tmp, 'upper'), { recursive: true, mode: 0o755 });
          await mkdir(join(tmp, 'work'), { recursive: true, mode: 0o700 });
        } else {
          await mkdir(join(tmp, 'fs'), { recursive: true, mode: 0o755 });
          for (const l of [...chain].reverse()) await copyLayer(l.fs, join(tmp, 'fs'));
        }
        const meta: Meta = { kind: 'active', key, ...(parent !== undefined ? { parent } : {}), created: new Date().toISOString(), driver };
        await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta));
        await rename(tmp, dest);
      } catch (e) {
        await rm(tmp, { recursive: true, force: true }).catch(() => {});
        throw e instanceof BerthError ? e : fromSystemError(e, `preparing snapshot ${key}`);
      }
    });
  }

  /** Mount the active snapshot `key` at `target` (an existing directory). */
  async mount(key: string, target: string): Promise<void> {
    const dir = this.#activeDir(key);
    const m = await this.#meta(dir);
    if (!m || m.kind !== 'active' || m.key !== key) throw new BerthError('NOT_FOUND', `snapshot ${key} does not exist`);
    if (m.driver === 'copy') {
      this.#mount(join(dir, 'fs'), target, 'none', 4096 /* MS_BIND */, '', undefined, key);
      return;
    }
    const chain = await this.#chain(m.parent);
    // Relative lowerdirs need a chdir around mount(2), which worker threads cannot do.
    const rel = isMainThread;
    const lower = chain.length > 0 ? chain.map((l) => (rel ? l.rel : l.fs)).join(':') : rel ? 'empty' : join(this.dir, 'empty');
    const data = `lowerdir=${lower},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
    if (data.length >= PAGE) {
      throw new BerthError('UNSUPPORTED', `snapshot ${key}: a chain of ${chain.length} layers is too long for one overlay mount`, {
        hint: 'squash the image, or use BERTH_SNAPSHOTTER=copy',
      });
    }
    this.#mount('overlay', target, 'overlay', 0, data, rel ? this.dir : undefined, key);
  }

  #mount(source: string, target: string, fstype: string, flags: number, data: string, cwd: string | undefined, key: string): void {
    const prev = process.cwd();
    try {
      if (cwd) process.chdir(cwd);
      native().mount(source, target, fstype, flags, data);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new BerthError(code === 'EPERM' || code === 'EACCES' ? 'UNAVAILABLE' : 'INTERNAL', `mounting snapshot ${key} at ${target}: ${(e as Error).message}`, {
        cause: e,
        ...(code === 'EPERM' ? { hint: 'mounting needs root' } : code === 'ENODEV' ? { hint: 'overlayfs is unavailable; set BERTH_SNAPSHOTTER=copy' } : {}),
      });
    } finally {
      if (cwd) process.chdir(prev);
    }
  }

  /** Unmount `target`; a busy mount is retried, then detached lazily. Not mounted is fine. */
  async unmount(target: string): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        native().umount2(target, 0);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EINVAL' || code === 'ENOENT') return; // not a mount point (any more)
        if (code !== 'EBUSY') throw new BerthError('INTERNAL', `unmounting ${target}: ${(e as Error).message}`, { cause: e });
        if (i >= 4) {
          native().umount2(target, MNT_DETACH);
          return;
        }
        await new Promise((r) => setTimeout(r, 25 << i));
      }
    }
  }

  /** Turn the active snapshot `key` (unmounted) into the committed snapshot `name`. */
  async commit(name: string, key: string): Promise<void> {
    const dir = this.#activeDir(key);
    await withLock(join(this.dir, 'lock'), async () => {
      const m = await this.#meta(dir);
      if (!m || m.kind !== 'active' || m.key !== key) throw new BerthError('NOT_FOUND', `snapshot ${key} does not exist`);
      if (await this.has(name)) throw new BerthError('ALREADY_EXISTS', `snapshot ${name} already exists`);
      const tmp = join(this.dir, 'tmp', `commit-${process.pid}-${randomBytes(6).toString('hex')}`);
      await mkdir(tmp);
      try {
        // overlay: the upper dir already holds overlay whiteouts. copy: fs/ is the whole tree,
        // so the committed snapshot stands alone (no parent to mount under it).
        await rename(join(dir, m.driver === 'copy' ? 'fs' : 'upper'), join(tmp, 'fs'));
        const meta: Meta = { kind: 'committed', key: name, ...(m.driver !== 'copy' && m.parent !== undefined ? { parent: m.parent } : {}), created: new Date().toISOString() };
        await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta));
        await rename(tmp, this.#committedDir(name));
      } catch (e) {
        await rm(tmp, { recursive: true, force: true }).catch(() => {});
        throw fromSystemError(e, `committing snapshot ${key}`);
      }
      await rm(dir, { recursive: true, force: true });
    });
  }

  /** Remove an active snapshot by key, or a committed one by name (not one others build on). */
  async remove(key: string): Promise<void> {
    await withLock(join(this.dir, 'lock'), async () => {
      const a = this.#activeDir(key);
      const am = await this.#meta(a);
      if (am?.key === key) {
        await rmTree(a);
        return;
      }
      const c = this.#committedDir(key);
      const cm = await this.#meta(c);
      if (cm?.key !== key) throw new BerthError('NOT_FOUND', `snapshot ${key} does not exist`);
      const users = (await this.list()).filter((s) => s.parent === key);
      if (users.length > 0) throw new BerthError('INVALID_ARGUMENT', `snapshot ${key} is the parent of ${users.length} other snapshot(s)`, { hint: 'remove those first' });
      await rmTree(c);
    });
  }

  async list(): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const kind of ['c', 'a'] as const) {
      for (const id of await readdir(join(this.dir, kind)).catch(() => [] as string[])) {
        const m = await this.#meta(join(this.dir, kind, id));
        if (!m) continue;
        out.push({ kind: m.kind, key: m.key, ...(m.parent !== undefined ? { parent: m.parent } : {}), created: m.created, ...(m.driver ? { driver: m.driver } : {}) });
      }
    }
    return out;
  }

  /**
   * Remove committed snapshots that nothing reaches: not named in `inUse` (chain ids of images,
   * keys of containers), not a parent of one that is, and not under an active snapshot. Stale
   * temporary directories of dead processes go too. Returns the removed names.
   */
  async gc(inUse: Set<string>, opts: { beforeRemove?: (name: string, dir: string) => Promise<void> } = {}): Promise<string[]> {
    return withLock(join(this.dir, 'lock'), async () => {
      const all = await this.list();
      const parentOf = new Map(all.filter((s) => s.kind === 'committed').map((s) => [s.key, s.parent]));
      const keep = new Set<string>();
      const reach = (n: string | undefined) => {
        for (let cur = n; cur !== undefined && !keep.has(cur); cur = parentOf.get(cur)) keep.add(cur);
      };
      for (const s of all) {
        if (s.kind === 'active') reach(s.parent);
        else if (inUse.has(s.key)) reach(s.key);
      }
      const removed: string[] = [];
      for (const s of all) {
        if (s.kind !== 'committed' || keep.has(s.key)) continue;
        await opts.beforeRemove?.(s.key, this.#committedDir(s.key));
        await rmTree(this.#committedDir(s.key));
        removed.push(s.key);
      }
      for (const t of await readdir(join(this.dir, 'tmp')).catch(() => [] as string[])) {
        const pid = Number(t.split('-')[1]);
        if (Number.isInteger(pid) && pid > 0 && !alive(pid)) await rmTree(join(this.dir, 'tmp', t));
      }
      return removed;
    });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function rmTree(p: string): Promise<void> {
  try {
    await rm(p, { recursive: true, force: true, maxRetries: 3 });
  } catch (e) {
    throw fromSystemError(e, `removing ${p}`);
  }
}

/**
 * Copy driver: apply one overlay-format layer directory onto `dst`: whiteout devices (0/0)
 * delete, opaque directories drop what lower layers put there, everything else is copied with
 * `cp -a` (owners, modes, times, xattrs, hard links), and the whiteout markers are removed.
 */
async function copyLayer(src: string, dst: string): Promise<void> {
  const markers: string[] = [];
  const walk = (rel: string) => {
    for (const n of readdirSync(join(src, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(src, r));
      if (st.isCharacterDevice() && st.rdev === 0) {
        markers.push(r);
        rmSync(join(dst, r));
      } else if (st.isDirectory()) {
        if (native().lgetxattr(join(src, r), 'trusted.overlay.opaque')?.toString() === 'y') {
          const d = lstatOrUndefined(join(dst, r));
          if (d?.isDirectory()) for (const c of readdirSync(join(dst, r))) rmSync(join(dst, r, c));
          else if (d) rmSync(join(dst, r));
        } else {
          const d = lstatOrUndefined(join(dst, r));
          if (d && !d.isDirectory()) rmSync(join(dst, r));
        }
        walk(r);
      } else {
        // Whatever a lower layer has there goes first: cp must never write through a symlink.
        rmSync(join(dst, r));
      }
    }
  };
  walk('');
  try {
    await execFileP('cp', ['-a', '--remove-destination', '--no-target-directory', src, dst], { maxBuffer: 1 << 20 });
  } catch (e) {
    throw new BerthError('INTERNAL', `copying snapshot layer ${src}: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`, { cause: e });
  }
  for (const r of markers) rmSync(join(dst, r));
  // trusted.overlay.opaque copied by cp -a is harmless on a tree that is never an overlay lower.
}

function lstatOrUndefined(p: string): import('node:fs').Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

function rmSync(p: string): void {
  rmSyncFs(p, { recursive: true, force: true });
}
