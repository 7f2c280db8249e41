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
 *
 * Overlay mounts are pinned to redirect_dir=off, metacopy=off and index=off, whatever the
 * kernel's defaults: then the upper dir is a faithful diff (a renamed directory is copied up
 * whole instead of leaving a redirect xattr; a chmod copies the data up instead of leaving a
 * metadata-only inode), and `diff` turns it into a layer as it is. The copy driver's `diff`
 * compares the active tree with its parent's tree.
 *
 * Unpacking image layers is not the snapshotter's business: `unpack()` (unpack.ts) takes any
 * content source and calls `apply`.
 */
import { execFile } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync as rmSyncFs, writeFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { native, MNT_DETACH } from '../archive/native.js';
import { BerthError, fromSystemError } from '../errors.js';
import type { OpOptions } from '../oci/content.js';
import type { Digest } from '../oci/types.js';
import type { ImageView } from '../store/images.js';
import type { ContentStore } from '../store/store.js';
import { pidAlive, withLock } from '../store/lock.js';
import { randomHex, sha256Text } from '../oci/digest.js';

/** node:util is not loaded for this one promise: a warm `run` never needs it. */
const execFileP = (file: string, args: string[], o: { maxBuffer: number }) =>
  new Promise<void>((resolve, reject) => void execFile(file, args, o, (e) => (e ? reject(e) : resolve())));
/**
 * A worker thread, where process.chdir throws: Node marks a worker's chdir `disabled`, which spares
 * loading node:worker_threads on every mount; a chdir that throws anyway is caught (workerChdir).
 */
const inWorker = (): boolean => (process.chdir as { disabled?: boolean }).disabled === true;
const workerChdir = (e: unknown): boolean => ((e as { cause?: { code?: string } })?.cause?.code ?? (e as { code?: string })?.code) === 'ERR_WORKER_UNSUPPORTED_OPERATION';

export type SnapshotDriver = 'overlay' | 'copy';

export type SnapshotKind = 'committed' | 'active' | 'view';

export interface SnapshotInfo {
  kind: SnapshotKind;
  /** The committed snapshot's name (a chain id for layers) or the active snapshot's key. */
  key: string;
  parent?: string;
  created: string;
  driver?: SnapshotDriver;
}

interface Meta {
  kind: SnapshotKind;
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
    out.push(prev === undefined ? (d as Digest) : (`sha256:${sha256Text(`${prev} ${d}`)}` as Digest));
  }
  return out;
}

function idOf(name: string): string {
  return sha256Text(name).slice(0, 16);
}

const PAGE = 4096;
const MS_RDONLY = 1;
const MS_REMOUNT = 32;
const MS_BIND = 4096;
/** Overlay options that keep the upper dir a faithful diff (see the module comment). */
const OVERLAY_PINNED = 'redirect_dir=off,metacopy=off,index=off';

export interface DiffOptions {
  /** Clamp mtimes to this many seconds since 1970 (SOURCE_DATE_EPOCH): same tree, same bytes. */
  epoch?: number;
  /** Paths to leave out of the layer (relative: `var/cache/x`), with everything below them. */
  exclude?: (relPath: string) => boolean;
  signal?: AbortSignal;
}

/**
 * Snapshots in containerd's vocabulary. Committed snapshots are read-only layers (named by
 * chain id for image layers); active ones are writable trees on a committed parent (a
 * container's rootfs, a build step); views are read-only trees on a committed parent.
 */
export interface Snapshotter {
  /** The directory the snapshots live in. */
  readonly dir: string;
  /** The driver in use. */
  driver(): Promise<SnapshotDriver>;
  /** Whether a committed snapshot by that name exists. */
  has(name: string): Promise<boolean>;
  /** What `key` (an active snapshot or view) or `name` (a committed one) is; NOT_FOUND when none. */
  stat(key: string): Promise<SnapshotInfo>;
  /** A writable snapshot `key` on the committed `parent` (or on nothing). */
  prepare(key: string, parent: string | undefined, opts?: OpOptions): Promise<void>;
  /** A read-only snapshot `key` on the committed `parent`; mounts read-only. */
  view(key: string, parent: string, opts?: OpOptions): Promise<void>;
  /**
   * Mount an active snapshot or view at `target` (an existing directory). `volatile`: overlay
   * skips syncing the upper filesystem (unmount then costs no sync of the whole disk); only for a
   * snapshot mounted once and thrown away (a `run --rm` container), which a crash may lose.
   */
  mount(key: string, target: string, opts?: { volatile?: boolean }): Promise<void>;
  /** Unmount `target`; not mounted is fine. */
  unmount(target: string): Promise<void>;
  /** Turn the active snapshot `key` (unmounted) into the committed snapshot `name`. */
  commit(name: string, key: string): Promise<void>;
  /**
   * Create the committed snapshot `name` on `parent` from a layer: `write` fills the empty
   * directory it is given in overlay format (whiteouts as 0/0 character devices, opaque
   * directories marked trusted.overlay.opaque=y) and returns the layer's diff id. When another
   * writer committed `name` first, theirs is kept.
   */
  apply(name: string, parent: string | undefined, write: (dir: string) => Promise<{ diffId: string }>): Promise<void>;
  /**
   * The changes of the active snapshot `key` against its parent, as an OCI layer tar stream
   * (uncompressed). Runtime leftovers (mount points runc and berth created) are not part of it.
   */
  diff(key: string, opts?: DiffOptions): Promise<Readable>;
  /** Remove an active snapshot or view by key, or a committed one by name (not one others build on). */
  remove(key: string): Promise<void>;
  list(): Promise<SnapshotInfo[]>;
  /** Remove committed snapshots nothing reaches; see LocalSnapshotter.gc. */
  gc(inUse: Set<string>): Promise<string[]>;
}

/** The snapshotter on the local disk (overlay or copy driver). */
export class LocalSnapshotter implements Snapshotter {
  readonly dir: string;
  readonly #driverPref: SnapshotDriver | undefined;
  #driver: Promise<SnapshotDriver> | undefined;

  /** @internal use LocalSnapshotter.open or openSnapshotter */
  constructor(root: string, driver?: SnapshotDriver) {
    this.dir = join(root, 'snapshots');
    this.#driverPref = driver;
  }

  /** Open the snapshotter under `<root>/snapshots`. The driver defaults to overlay when it works. */
  static async open(root: string, opts: { driver?: SnapshotDriver } = {}): Promise<LocalSnapshotter> {
    const env = process.env.BERTH_SNAPSHOTTER;
    if (env !== undefined && env !== '' && env !== 'overlay' && env !== 'copy') {
      throw new BerthError('INVALID_ARGUMENT', `BERTH_SNAPSHOTTER=${env} is not a snapshotter`, { hint: "use 'overlay' or 'copy'" });
    }
    const s = new LocalSnapshotter(root, opts.driver ?? ((env || undefined) as SnapshotDriver | undefined));
    try {
      // Synchronous: four directories that exist after the first open (a warm run waits on them).
      for (const d of ['c', 'a', 'tmp', 'empty']) mkdirSync(join(s.dir, d), { recursive: true, mode: 0o700 });
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
    const t = join(this.dir, 'tmp', `probe-${process.pid}-${randomHex(4)}`);
    try {
      for (const d of ['l', 'u', 'w', 'm']) await mkdir(join(t, d), { recursive: true });
      native().mount('overlay', join(t, 'm'), 'overlay', 0, `lowerdir=${t}/l,upperdir=${t}/u,workdir=${t}/w,${OVERLAY_PINNED}`);
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

  /** A snapshot's meta.json (a few hundred bytes, read synchronously: a warm run reads several in turn). */
  async #meta(dir: string): Promise<Meta | undefined> {
    try {
      return JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Meta;
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
   * @deprecated unpacking is `unpack(snapshotter, source, view)` (unpack.ts); this forwards to it
   * until every caller moved.
   */
  async unpackImage(store: ContentStore, view: ImageView, opts: OpOptions = {}): Promise<{ chainId: string }> {
    const { unpack } = await import('./unpack.js');
    return unpack(this, store, view, opts);
  }

  async apply(name: string, parent: string | undefined, write: (dir: string) => Promise<{ diffId: string }>): Promise<void> {
    if (await this.has(name)) return;
    const tmp = join(this.dir, 'tmp', `unpack-${process.pid}-${randomHex(6)}`);
    try {
      await mkdir(join(tmp, 'fs'), { recursive: true, mode: 0o755 });
      const { diffId } = await write(join(tmp, 'fs'));
      const meta: Meta = { kind: 'committed', key: name, ...(parent !== undefined ? { parent } : {}), diffId, created: new Date().toISOString() };
      await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta));
      await this.#publish(tmp, this.#committedDir(name));
    } catch (e) {
      await rm(tmp, { recursive: true, force: true }).catch(() => {});
      throw e instanceof BerthError ? e : fromSystemError(e, `writing snapshot ${name}`);
    }
  }

  async stat(key: string): Promise<SnapshotInfo> {
    const m = (await this.#meta(this.#activeDir(key))) ?? (await this.#meta(this.#committedDir(key)));
    if (!m || m.key !== key) throw new BerthError('NOT_FOUND', `snapshot ${key} does not exist`);
    return { kind: m.kind, key: m.key, ...(m.parent !== undefined ? { parent: m.parent } : {}), created: m.created, ...(m.driver ? { driver: m.driver } : {}) };
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
  prepare(key: string, parent: string | undefined, _opts: OpOptions = {}): Promise<void> {
    return this.#create('active', key, parent);
  }

  /** Create a read-only view `key` of the committed `parent`. */
  view(key: string, parent: string, _opts: OpOptions = {}): Promise<void> {
    return this.#create('view', key, parent);
  }

  async #create(kind: 'active' | 'view', key: string, parent: string | undefined): Promise<void> {
    if (!key) throw new BerthError('INVALID_ARGUMENT', 'snapshot key must not be empty');
    const driver = await this.driver();
    const dest = this.#activeDir(key);
    await withLock(join(this.dir, 'lock'), async () => {
      if (await this.#meta(dest)) throw new BerthError('ALREADY_EXISTS', `snapshot ${key} already exists`);
      const chain = await this.#chain(parent);
      const tmp = join(this.dir, 'tmp', `prepare-${process.pid}-${randomHex(6)}`);
      try {
        if (driver === 'overlay') {
          // Two empty directories and a small file: synchronously (every run prepares one).
          if (kind === 'active') {
            mkdirSync(join(tmp, 'upper'), { recursive: true, mode: 0o755 });
            mkdirSync(join(tmp, 'work'), { recursive: true, mode: 0o700 });
          } else mkdirSync(tmp, { recursive: true });
        } else {
          await mkdir(join(tmp, 'fs'), { recursive: true, mode: 0o755 });
          for (const l of [...chain].reverse()) await copyLayer(l.fs, join(tmp, 'fs'));
        }
        const meta: Meta = { kind, key, ...(parent !== undefined ? { parent } : {}), created: new Date().toISOString(), driver };
        writeFileSync(join(tmp, 'meta.json'), JSON.stringify(meta));
        renameSync(tmp, dest);
      } catch (e) {
        await rm(tmp, { recursive: true, force: true }).catch(() => {});
        throw e instanceof BerthError ? e : fromSystemError(e, `preparing snapshot ${key}`);
      }
    });
  }

  /** Mount the active snapshot or view `key` at `target` (an existing directory). */
  async mount(key: string, target: string, opts: { volatile?: boolean } = {}): Promise<void> {
    const dir = this.#activeDir(key);
    const m = await this.#meta(dir);
    if (!m || (m.kind !== 'active' && m.kind !== 'view') || m.key !== key) throw new BerthError('NOT_FOUND', `snapshot ${key} does not exist`);
    if (m.driver === 'copy') {
      this.#mount(join(dir, 'fs'), target, 'none', MS_BIND, '', undefined, key);
      if (m.kind === 'view') this.#mount('none', target, 'none', MS_BIND | MS_REMOUNT | MS_RDONLY, '', undefined, key);
      return;
    }
    const chain = await this.#chain(m.parent);
    // Relative lowerdirs need a chdir around mount(2), which worker threads cannot do.
    const mountAs = (rel: boolean): void => {
      const empty = rel ? 'empty' : join(this.dir, 'empty');
      let lower = chain.length > 0 ? chain.map((l) => (rel ? l.rel : l.fs)).join(':') : empty;
      // A view has no upper dir; overlay then wants two lower dirs at least.
      if (m.kind === 'view' && chain.length < 2) lower += `:${empty}`;
      const data = m.kind === 'view' ? `lowerdir=${lower},${OVERLAY_PINNED}` : `lowerdir=${lower},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')},${OVERLAY_PINNED}`;
      if (data.length >= PAGE) {
        throw new BerthError('UNSUPPORTED', `snapshot ${key}: a chain of ${chain.length} layers is too long for one overlay mount`, {
          hint: 'squash the image, or use BERTH_SNAPSHOTTER=copy',
        });
      }
      if (opts.volatile && m.kind !== 'view') {
        try {
          this.#mount('overlay', target, 'overlay', 0, `${data},volatile`, rel ? this.dir : undefined, key);
          return;
        } catch (e) {
          if (workerChdir(e)) throw e;
          /* a kernel before 5.10: mount it the ordinary way */
        }
      }
      this.#mount('overlay', target, 'overlay', m.kind === 'view' ? MS_RDONLY : 0, data, rel ? this.dir : undefined, key);
    };
    try {
      mountAs(!inWorker());
    } catch (e) {
      if (!workerChdir(e)) throw e;
      mountAs(false); // a worker thread that inWorker() did not recognise
    }
  }

  async diff(key: string, opts: DiffOptions = {}): Promise<Readable> {
    const { writeLayer } = await import('../archive/layer.js');
    const dir = this.#activeDir(key);
    const m = await this.#meta(dir);
    if (!m || m.key !== key || m.kind === 'committed') {
      const c = await this.#meta(this.#committedDir(key));
      if (c?.key !== key) throw new BerthError('NOT_FOUND', `snapshot ${key} does not exist`);
      // A committed snapshot is stored in overlay format: it is its own diff.
      return writeLayer({ dir: join(this.#committedDir(key), 'fs'), mode: 'overlay', ...layerOpts(opts) });
    }
    const tree = join(dir, m.driver === 'copy' ? 'fs' : 'upper');
    await stat(tree).catch((e) => {
      throw e.code === 'ENOENT' ? new BerthError('NOT_FOUND', `snapshot ${key}: its files are gone (${tree})`, { hint: 'the snapshot was removed behind berth\'s back; remove the container' }) : fromSystemError(e, `reading snapshot ${key}`);
    });
    if (m.driver !== 'copy') return writeLayer({ dir: tree, mode: 'overlay', ...layerOpts(opts) });
    // copy: compare with the parent's tree, put together in a temporary directory.
    const base = join(this.dir, 'tmp', `diff-${process.pid}-${randomHex(6)}`);
    try {
      await mkdir(base, { recursive: true, mode: 0o700 });
      for (const l of [...(await this.#chain(m.parent))].reverse()) await copyLayer(l.fs, base);
    } catch (e) {
      await rm(base, { recursive: true, force: true }).catch(() => {});
      throw e instanceof BerthError ? e : fromSystemError(e, `diffing snapshot ${key}`);
    }
    const out = writeLayer({ dir: tree, mode: 'compare', base, ...layerOpts(opts) });
    out.once('close', () => void rm(base, { recursive: true, force: true }).catch(() => {}));
    return out;
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
      const tmp = join(this.dir, 'tmp', `commit-${process.pid}-${randomHex(6)}`);
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
      if (am?.key === key && am.kind !== 'committed') {
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
        if (s.kind !== 'committed') reach(s.parent);
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
        if (Number.isInteger(pid) && pid > 0 && !pidAlive(pid)) await rmTree(join(this.dir, 'tmp', t));
      }
      return removed;
    });
  }
}

function layerOpts(o: DiffOptions): { epoch?: number; exclude?: (p: string) => boolean; signal?: AbortSignal } {
  return { ...(o.epoch !== undefined ? { epoch: o.epoch } : {}), ...(o.exclude ? { exclude: o.exclude } : {}), ...(o.signal ? { signal: o.signal } : {}) };
}

/**
 * Open the snapshotter under `<root>/snapshots`.
 */
export function openSnapshotter(root: string, opts: { driver?: SnapshotDriver } = {}): Promise<Snapshotter> {
  return LocalSnapshotter.open(root, opts);
}

/**
 * `Snapshotter.open(root)` keeps working for callers written before the interface existed:
 * the value `Snapshotter` is the local implementation; the type `Snapshotter` is the interface.
 */
export const Snapshotter = LocalSnapshotter;

/** Whether the tree under `p` has at most `budget` entries (read synchronously, stopping early). */
function smallTree(p: string, budget: number): boolean {
  let left = budget;
  const walk = (dir: string): boolean => {
    let ents;
    try {
      ents = readdirSync(dir, { withFileTypes: true });
    } catch {
      return true; // gone, or not a directory: rm decides
    }
    left -= ents.length;
    if (left < 0) return false;
    for (const e of ents) if (e.isDirectory() && !walk(join(dir, e.name))) return false;
    return true;
  };
  return walk(p);
}

/**
 * Remove a snapshot directory. The snapshot of a container that ran one command holds a handful
 * of entries: removed synchronously (fs.rm's recursive walk costs a thread-pool trip per entry,
 * ~7 ms of every `run --rm`). A larger tree goes to the thread pool, so a container that wrote
 * much never blocks the event loop for long.
 */
async function rmTree(p: string): Promise<void> {
  try {
    if (smallTree(p, 256)) {
      try {
        rmSyncFs(p, { recursive: true, force: true });
        return;
      } catch {
        /* busy or odd: the asynchronous way retries */
      }
    }
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
