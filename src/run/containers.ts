/**
 * Containers: the façade over the run room's parts. A container is a record (records.ts) plus an
 * active snapshot mounted at its bundle's rootfs plus, while it runs, runc's state. Its process
 * runs through runProcess (process.ts) under a monitor: the foreground `berth run` itself, or a
 * detached monitor process (monitor.ts, like containerd-shim). Logs are docker json-file lines
 * (logs.ts); the bundle is written by bundle.ts from spec.ts's runtime spec.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { procStart } from '../store/lock.js';
import { BerthError, isBerthError } from '../errors.js';
import type { ImageView } from '../store/images.js';
import type { ContentStore } from '../store/store.js';
import type { OpOptions } from '../oci/content.js';
import type { SnapshotDriver, Snapshotter } from '../snapshot/index.js';
import { prepareRootfs, writeBundle } from './bundle.js';
import { LogWriter, readLog, type LogEntry } from './logs.js';
import { ImageCache, type ResolvedImage } from './imagecache.js';
import { execProcess, runProcess, signalNumber } from './process.js';
import { NAME_RE, Records, randomName, writeJsonAtomic, type ContainerInfo, type ContainerPaths, type ContainerRecord, type ContainerState } from './records.js';
import { mkdirInRoot, readInRoot } from './rootfs.js';
import { Runc, type RuncVersion } from './runc.js';
import {
  buildProcess,
  buildSpec,
  computeCaps,
  hostsFile,
  mergeEnv,
  parseTmpfs,
  parseVolume,
  processArgs,
  resolveUser,
  resolvConf,
  type BindSpec,
  type RuntimeSpec,
  type SpecMount,
} from './spec.js';
import { randomHex } from '../oci/digest.js';

export type { ContainerInfo, ContainerPaths, ContainerRecord, ContainerState, ContainerStatus } from './records.js';
export type { LogEntry } from './logs.js';
export { signalNumber } from './process.js';

export interface CreateOptions extends OpOptions {
  image: string;
  cmd?: string[];
  name?: string;
  entrypoint?: string;
  env?: string[];
  workdir?: string;
  user?: string;
  volumes?: string[];
  tmpfs?: string[];
  readOnly?: boolean;
  network?: 'private' | 'host' | 'none' | 'bridge' | 'default';
  hostname?: string;
  memory?: number;
  cpus?: number;
  pidsLimit?: number;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  autoRemove?: boolean;
  tty?: boolean;
  interactive?: boolean;
  /** Run tini (the host's static tini, bind-mounted read-only at /sbin/docker-init) as PID 1. */
  init?: boolean;
  /** Only shapes the error for an absent image: this library never pulls (the caller does). */
  pull?: 'missing' | 'never' | 'always';
}

export interface ExecOptions {
  args: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  tty?: boolean;
  interactive?: boolean;
}

/** Where a supervised process's stdio goes. */
export interface SuperviseIO {
  /** Give the container our stdin (with -i). */
  stdin: 'inherit' | 'ignore';
  /** A real terminal is available (stdin and stdout are TTYs). */
  tty: boolean;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Called with a function that forwards a signal to the container. */
  forwardSignals?: (forward: (sig: NodeJS.Signals) => void) => void;
  onStarted?: (pid: number) => void;
}

/**
 * docker's RLIMIT_NOFILE (1048576), capped at this process's hard limit when it lacks
 * CAP_SYS_RESOURCE to raise it (runc would fail with EPERM).
 */
export async function nofileLimit(): Promise<number> {
  const want = 1048576;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const eff = BigInt('0x' + (/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'));
    if (eff & (1n << 24n)) return want;
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
    const hard = m?.[2] === 'unlimited' ? want : Number(m?.[2]);
    return Number.isFinite(hard) && hard > 0 ? Math.min(want, hard) : want;
  } catch {
    return want;
  }
}

/** Where --init's tini is mounted (docker's path). */
export const INIT_PATH = '/sbin/docker-init';

/** The host's static init for --init: BERTH_INIT, else Debian's tini-static. */
function findInit(): string {
  const candidates = [process.env.BERTH_INIT, '/usr/bin/tini-static', '/usr/bin/docker-init'].filter((x): x is string => !!x);
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new BerthError('UNAVAILABLE', '--init needs a static init binary (tini-static)', { hint: 'install it: apt-get install tini, or set BERTH_INIT' });
  return found;
}

/** Whether `target` is a mount point (from /proc/self/mountinfo). */
export async function isMounted(target: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const esc = target.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return info.split('\n').some((l) => l.split(' ')[4] === esc);
}

/** A small file's text, '' when it cannot be read (read synchronously: the warm path's reads are tiny). */
function readSmall(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The snapshotter, without its overlay probe (a test mount) on every run: once overlay worked
 * under this root, that is remembered in `cacheFile` (a failed probe is not remembered).
 */
async function openSnapshotter(root: string, cacheFile: string, driver?: SnapshotDriver): Promise<Snapshotter> {
  // snapshotter.js, not the room's index: unpack (a cold run's) loads when a cold run needs it.
  const m = await import('../snapshot/snapshotter.js');
  if (driver) return m.openSnapshotter(root, { driver });
  if (process.env.BERTH_SNAPSHOTTER) return m.openSnapshotter(root);
  if (readSmall(cacheFile) === 'overlay') return m.openSnapshotter(root, { driver: 'overlay' });
  const s = await m.openSnapshotter(root);
  if ((await s.driver()) === 'overlay') await writeFile(cacheFile, 'overlay').catch(() => {});
  return s;
}

// ---- the container set ----

export class Containers {
  readonly root: string;
  readonly dir: string;
  readonly namesDir: string;
  readonly runc: Runc;
  readonly records: Records;
  #snap: Promise<Snapshotter> | undefined;
  readonly #driver: SnapshotDriver | undefined;

  private constructor(root: string, runc?: Runc, driver?: SnapshotDriver) {
    this.#driver = driver;
    this.root = root;
    this.records = new Records(root);
    this.dir = this.records.dir;
    this.namesDir = this.records.namesDir;
    this.runc = runc ?? new Runc({ root: join(root, 'runc') });
  }

  /** `snapshotter` picks the driver of new containers' snapshots (default: overlay when it works, or BERTH_SNAPSHOTTER). */
  static async open(root: string, opts: { runc?: Runc; snapshotter?: SnapshotDriver } = {}): Promise<Containers> {
    const c = new Containers(root, opts.runc, opts.snapshotter);
    await c.records.init();
    await mkdir(c.runc.root, { recursive: true, mode: 0o700 }).catch(() => {});
    return c;
  }

  snapshotter(): Promise<Snapshotter> {
    return (this.#snap ??= openSnapshotter(this.root, join(this.dir, '.snapshot-driver'), this.#driver));
  }

  paths(id: string): ContainerPaths {
    return this.records.paths(id);
  }

  /**
   * Check runc once per binary (cached by path, size and mtime under <root>/runc): missing runc is
   * UNAVAILABLE; the returned warning is set only the first time an old runc is seen. Asked
   * once per Containers object (run's CLI and create both ask).
   */
  checkRunc(): Promise<RuncVersion & { fresh: boolean }> {
    const p = (this.#runcChecked ??= this.#checkRunc());
    p.catch(() => {
      if (this.#runcChecked === p) this.#runcChecked = undefined;
    });
    return p;
  }

  #runcChecked: Promise<RuncVersion & { fresh: boolean }> | undefined;

  async #checkRunc(): Promise<RuncVersion & { fresh: boolean }> {
    const bin = this.runc.binary.includes('/') ? this.runc.binary : (process.env.PATH ?? '').split(':').map((d) => join(d || '.', this.runc.binary)).find((p) => existsSync(p));
    if (!bin) throw new BerthError('UNAVAILABLE', `runc not found (${this.runc.binary})`, { hint: 'install it: apt-get install runc' });
    const st = statSync(bin, { throwIfNoEntry: false });
    if (!st) throw new BerthError('UNAVAILABLE', `runc not found (${bin})`, { hint: 'install it: apt-get install runc' });
    const key = `${bin}:${st.size}:${st.mtimeMs}`;
    const cache = join(this.runc.root, 'version.json');
    try {
      const c = JSON.parse(readFileSync(cache, 'utf8')) as RuncVersion & { key: string };
      if (c.key === key) return { ...c, fresh: false };
    } catch {
      /* no cache yet */
    }
    const v = await this.runc.version();
    await writeJsonAtomic(cache, { ...v, key }).catch(() => {});
    return { ...v, fresh: true };
  }

  // ---- lookup (records.ts) ----

  readRecord(id: string): Promise<ContainerRecord> {
    return this.records.readRecord(id);
  }

  readState(id: string): Promise<ContainerState> {
    return this.records.readState(id);
  }

  writeState(id: string, s: ContainerState): Promise<void> {
    return this.records.writeState(id, s);
  }

  info(id: string): Promise<ContainerInfo> {
    return this.records.info(id);
  }

  ids(): Promise<string[]> {
    return this.records.ids();
  }

  list(): Promise<ContainerInfo[]> {
    return this.records.list();
  }

  /** Find a container by full id, name, or unique id prefix. */
  find(input: string): Promise<string> {
    return this.records.find(input);
  }

  // ---- create ----

  /**
   * Create a container from an image: claim the name, unpack (when needed) and prepare the
   * snapshot, mount the rootfs, write the bundle. Nothing is left behind when it fails. `store`
   * may be a function: a warm create (the image resolved and unpacked by an earlier run, see
   * imagecache.ts) does not open the store at all.
   */
  async create(store: ContentStore | (() => Promise<ContentStore>), o: CreateOptions): Promise<ContainerRecord> {
    let storeP: Promise<ContentStore> | undefined;
    const getStore = () => (storeP ??= typeof store === 'function' ? store() : Promise.resolve(store));
    // Validate everything that needs no I/O first.
    const binds: BindSpec[] = (o.volumes ?? []).map(parseVolume);
    const tmpfs: SpecMount[] = (o.tmpfs ?? []).map(parseTmpfs);
    computeCaps(o);
    if (o.name !== undefined && !NAME_RE.test(o.name)) {
      throw new BerthError('INVALID_ARGUMENT', `invalid container name ${JSON.stringify(o.name)}`, { hint: 'use [a-zA-Z0-9][a-zA-Z0-9_.-]+' });
    }
    if (o.workdir !== undefined && !o.workdir.startsWith('/')) throw new BerthError('INVALID_ARGUMENT', `the working directory ${JSON.stringify(o.workdir)} must be an absolute path`);
    const network = o.network === 'host' ? 'host' : o.network === 'none' ? 'none' : 'private';
    for (const b of binds) {
      const st = await stat(b.source).catch(() => undefined);
      if (!st) throw new BerthError('INVALID_ARGUMENT', `invalid mount spec ${b.source}:${b.destination}: the host path ${b.source} does not exist`, { hint: 'create it first' });
    }
    const cache = new ImageCache(join(this.dir, '.image-cache.json'), typeof store === 'function' ? join(this.root, 'content', 'index.json') : store.indexPath);
    const snap = await this.snapshotter();
    let img = await cache.image(o.image);
    let view: ImageView | undefined;
    if (!img || !(await snap.has(img.chainId))) {
      view = await this.#image(await getStore(), o);
      img = { ...(view.name ? { name: view.name } : {}), manifestDigest: view.manifestDesc.digest, configDigest: view.configDesc.digest, config: view.config.config, chainId: '' };
    }
    let args = processArgs(img.config, { ...(o.entrypoint !== undefined ? { entrypoint: o.entrypoint } : {}), ...(o.cmd ? { cmd: o.cmd } : {}) });
    if (o.init) {
      binds.push({ source: findInit(), destination: INIT_PATH, readonly: true });
      args = [INIT_PATH, '--', ...args];
    }
    await this.checkRunc();

    const id = randomHex(32);
    const name = o.name ?? randomName();
    const p = this.paths(id);
    const cleanup: (() => Promise<unknown>)[] = [];
    try {
      // The name is claimed atomically: a second container with it fails here.
      await this.records.claimName(name, id);
      cleanup.push(() => this.records.releaseName(name, id));
      mkdirSync(p.rootfs, { recursive: true });
      cleanup.push(() => rm(p.dir, { recursive: true, force: true }));

      if (view) {
        const { unpack } = await import('../snapshot/index.js');
        const { chainId } = await unpack(snap, await getStore(), view, { ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
        img.chainId = chainId;
        await cache.setImage(o.image, img);
      }
      const snapshotKey = `ctr-${id}`;
      await snap.prepare(snapshotKey, img.chainId);
      cleanup.push(() => snap.remove(snapshotKey));
      // An --rm container's upper dir is never mounted again: no sync of the disk at unmount.
      await snap.mount(snapshotKey, p.rootfs, { volatile: !!o.autoRemove });
      cleanup.push(() => this.#unmount(p.rootfs));

      const hostname = o.hostname ?? (network === 'host' ? osHostname() : id.slice(0, 12));
      const record: ContainerRecord = {
        id,
        name,
        image: { ...(img.name ? { name: img.name } : {}), digest: img.manifestDigest, config: img.configDigest, ref: o.image },
        snapshotKey,
        chainId: img.chainId,
        created: new Date().toISOString(),
        args,
        hostname,
        autoRemove: !!o.autoRemove,
        tty: !!o.tty,
        interactive: !!o.interactive,
        stopSignal: img.config?.StopSignal ?? 'SIGTERM',
        network,
      };
      const spec = await this.#spec(p, record, img, cache, o, binds, tmpfs);
      await Promise.all([writeBundle(p.dir, spec), this.records.writeRecord(record), this.writeState(id, { status: 'created' }), cache.save()]);
      return record;
    } catch (e) {
      for (const f of cleanup.reverse()) await f().catch(() => {});
      throw e;
    }
  }

  async #image(store: ContentStore, o: CreateOptions): Promise<ImageView> {
    // The library does not pull (run/ does not depend on registry/): the caller pulls first.
    try {
      const { getImage } = await import('../store/images.js');
      return await getImage(store, o.image);
    } catch (e) {
      if (isBerthError(e, 'NOT_FOUND') && o.pull !== 'never') {
        throw new BerthError('NOT_FOUND', e.message, { cause: e, hint: 'pull it (berth pull) or load it (berth load) first' });
      }
      throw e;
    }
  }

  /** The runtime spec of a new container; its rootfs mount points and side files are made here. */
  async #spec(p: ContainerPaths, r: ContainerRecord, img: ResolvedImage, cache: ImageCache, o: CreateOptions, binds: BindSpec[], tmpfs: SpecMount[]): Promise<RuntimeSpec> {
    // The new upper dir is empty: the rootfs's /etc/passwd is the image's, so a user resolved
    // once in this chain is resolved for good.
    const userSpec = o.user ?? img.config?.User ?? '';
    let user = await cache.user(r.chainId, userSpec);
    if (!user) {
      const [passwd, group] = await Promise.all([readInRoot(p.rootfs, '/etc/passwd'), readInRoot(p.rootfs, '/etc/group')]);
      user = resolveUser(userSpec, passwd, group);
      await cache.setUser(r.chainId, userSpec, user);
    }
    const cwd = o.workdir ?? (img.config?.WorkingDir || '/');
    const [hostResolv, nofile] = [readSmall('/etc/resolv.conf'), await nofileLimit()];
    // Three small files, written synchronously (each is a few syscalls; a thread-pool trip costs more).
    writeFileSync(p.hosts, hostsFile(r.hostname, r.network));
    writeFileSync(p.resolv, resolvConf(hostResolv, r.network));
    writeFileSync(p.hostname, r.hostname + '\n');
    const spec = buildSpec({
      args: r.args,
      env: mergeEnv(img.config?.Env, [`HOSTNAME=${r.hostname}`], o.env),
      cwd,
      user,
      hostname: r.hostname,
      tty: !!o.tty,
      readOnly: !!o.readOnly,
      network: r.network,
      privileged: !!o.privileged,
      ...(o.capAdd ? { capAdd: o.capAdd } : {}),
      ...(o.capDrop ? { capDrop: o.capDrop } : {}),
      ...(o.memory !== undefined ? { memory: o.memory } : {}),
      ...(o.cpus !== undefined ? { cpus: o.cpus } : {}),
      ...(o.pidsLimit !== undefined ? { pidsLimit: o.pidsLimit } : {}),
      binds,
      tmpfs,
      files: { hosts: p.hosts, resolvConf: p.resolv, hostname: p.hostname },
      cgroupsPath: `/berth/${r.id}`,
      nofile,
      annotations: { 'org.opencontainers.image.ref.name': r.image.name ?? r.image.ref, 'io.berth.container.name': r.name },
    });
    // The runtime's own mount points are made real (symlinks an image put there replaced).
    await prepareRootfs(p.rootfs, spec, binds.some((b) => b.destination === INIT_PATH) ? [INIT_PATH] : []);
    if (cwd !== '/') await mkdirInRoot(p.rootfs, cwd, user.uid, user.gid);
    return spec;
  }

  async #unmount(target: string): Promise<void> {
    if (!(await isMounted(target))) return;
    const snap = await this.snapshotter();
    await snap.unmount(target);
  }

  /** Mount the rootfs again (a stopped container being started). */
  async remount(id: string): Promise<void> {
    const r = await this.readRecord(id);
    const p = this.paths(id);
    if (await isMounted(p.rootfs)) return;
    const snap = await this.snapshotter();
    await snap.mount(r.snapshotKey, p.rootfs);
  }

  // ---- running ----

  /**
   * Run the container's process in the foreground of this process (`berth run` without -d),
   * or as the detached monitor. Resolves with the exit status; a start failure (command not
   * found: 127, not executable: 126) is thrown after the container was marked exited. The exit
   * is recorded before anything is cleaned up, so `stop` and `wait` see it at once.
   */
  async supervise(id: string, io: SuperviseIO): Promise<number> {
    const r = await this.readRecord(id);
    const p = this.paths(id);
    const startedAt = new Date().toISOString();
    const monitorStart = procStart('self');
    const mon = { monitorPid: process.pid, ...(monitorStart ? { monitorStart } : {}) };
    // Recorded while runc starts (it takes far longer); the pid follows once it is known.
    let running = this.writeState(id, { status: 'running', ...mon, startedAt });
    running.catch(() => {});
    const tty = r.tty && io.tty;
    const log = tty ? undefined : new LogWriter(p.log);
    let res;
    try {
      res = await runProcess(this.runc, {
        id,
        bundle: p.dir,
        tty,
        io: {
          stdin: io.stdin === 'inherit' && r.interactive ? process.stdin : 'ignore',
          ...(log ? { stdout: log.tee('stdout', io.stdout), stderr: log.tee('stderr', io.stderr) } : {}),
        },
        onStarted: (pid) => {
          running = running.then(() => this.writeState(id, { status: 'running', pid, ...mon, startedAt })).catch(() => {});
          io.onStarted?.(pid);
        },
        ...(io.forwardSignals ? { forwardSignals: io.forwardSignals } : {}),
      });
    } catch (e) {
      await log?.close();
      await running.catch(() => {});
      await this.#finish(id, r, { status: 'exited', exitCode: 128, startedAt, error: (e as Error)?.message ?? String(e) });
      throw e;
    }
    await log?.close();
    await running.catch(() => {}); // the exit is recorded after every earlier state
    await this.#finish(id, r, { status: 'exited', exitCode: res.exitCode, startedAt, ...(res.error ? { error: res.error.message } : {}) });
    if (res.error) throw res.error;
    return res.exitCode;
  }

  /** After the process ended: record the exit (first), then unmount, and remove when --rm. */
  async #finish(id: string, r: ContainerRecord, s: ContainerState): Promise<void> {
    const p = this.paths(id);
    await this.writeState(id, { ...s, finishedAt: s.finishedAt ?? new Date().toISOString() });
    if (r.autoRemove) {
      await this.remove(id, { force: true, exited: true });
      return;
    }
    await this.#unmount(p.rootfs).catch(() => {});
  }

  /**
   * Start the container detached: a monitor process (monitor.ts, in its own session) runs it
   * and records the exit. Resolves once runc started the process (or throws why not).
   */
  async startDetached(id: string): Promise<{ pid: number }> {
    try {
      const info = await this.info(id);
      if (info.status === 'running') throw new BerthError('INVALID_ARGUMENT', `container ${info.record.name} is already running`);
      if (info.status === 'dead') await this.#cleanupStale(id);
      await this.remount(id);
      const { spawnMonitor } = await import('./monitor.js');
      return await spawnMonitor(this.root, id, this.paths(id).dir);
    } catch (e) {
      // The monitor cleans up after itself; this covers a monitor that never ran.
      if (existsSync(this.paths(id).dir) && (await this.info(id).catch(() => undefined))?.status !== 'running') {
        await this.#unmount(this.paths(id).rootfs).catch(() => {});
      }
      throw e;
    }
  }

  /**
   * Wait until the container is no longer running; its exit status. A container removed while
   * we wait (--rm) has stopped: its last recorded status is returned.
   */
  async wait(id: string, opts: { signal?: AbortSignal; intervalMs?: number } = {}): Promise<number> {
    let last: ContainerState | undefined;
    for (;;) {
      opts.signal?.throwIfAborted();
      let i: ContainerInfo;
      try {
        i = await this.info(id);
      } catch (e) {
        if (last && isBerthError(e, 'NOT_FOUND')) return last.exitCode ?? 0;
        throw e;
      }
      last = i.state;
      if (i.status === 'exited') return i.state.exitCode ?? 0;
      if (i.status === 'dead') return i.state.exitCode ?? 255;
      if (i.status === 'created') return i.state.exitCode ?? 0;
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25));
    }
  }

  /** Send a signal to the container's init (runc kill). */
  async kill(id: string, signal: string | number = 'SIGKILL', opts: { all?: boolean } = {}): Promise<void> {
    const n = signalNumber(signal);
    let i = await this.info(id);
    if (i.status !== 'running') throw new BerthError('INVALID_ARGUMENT', `container ${i.record.name} is not running`);
    // Between its monitor marking it running and runc starting it, runc does not know it yet.
    for (let t = 0; i.status === 'running' && i.state.pid === undefined && t < 400; t++) {
      await new Promise((r) => setTimeout(r, 25));
      const now = await this.info(id).catch(() => undefined);
      if (!now) return; // an --rm container that ended and was removed
      i = now;
    }
    if (i.status !== 'running') return;
    try {
      await this.runc.kill(id, n, opts);
    } catch (e) {
      // The process may have exited (and an --rm container gone) between the check and the kill.
      const now = await this.info(id).catch(() => undefined);
      if (now?.status === 'running') throw e;
    }
  }

  /**
   * Stop: the stop signal, then SIGKILL after `timeout` seconds. Returns the exit status
   * (undefined when it was not running). An --rm container that is removed while it stops has
   * stopped; that is not an error.
   */
  async stop(id: string, opts: { timeout?: number; signal?: string } = {}): Promise<number | undefined> {
    const i = await this.info(id);
    if (i.status !== 'running') return i.state.exitCode;
    const t = opts.timeout ?? 10;
    await this.kill(id, opts.signal ?? i.record.stopSignal).catch(() => {});
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), Math.max(0, t) * 1000);
    try {
      return await this.wait(id, { signal: ac.signal });
    } catch (e) {
      if (isBerthError(e, 'NOT_FOUND')) return undefined; // seen running, then removed (--rm): it stopped
      if (!ac.signal.aborted) throw e;
      await this.kill(id, 'SIGKILL', { all: true }).catch(() => {});
      return await this.wait(id, { signal: AbortSignal.timeout(10_000) });
    } finally {
      clearTimeout(timer);
    }
  }

  async #cleanupStale(id: string): Promise<void> {
    if (this.runc.hasState(id)) await this.runc.delete(id, { force: true }).catch(() => {});
    await this.#unmount(this.paths(id).rootfs).catch(() => {});
  }

  /**
   * Remove a container: with `force` a running one is killed first, and whatever a crash left
   * (runc state, the rootfs mount, the snapshot, a half-written directory) is cleaned up.
   */
  async remove(id: string, opts: { force?: boolean; exited?: boolean } = {}): Promise<void> {
    const p = this.paths(id);
    let record: ContainerRecord | undefined;
    try {
      record = await this.readRecord(id);
    } catch {
      if (!opts.force) throw new BerthError('NOT_FOUND', `no such container: ${id}`);
    }
    if (!opts.exited) {
      const info = record ? await this.info(id) : undefined;
      if (info?.status === 'running') {
        if (!opts.force) {
          throw new BerthError('INVALID_ARGUMENT', `cannot remove container ${info.record.name}: it is running`, { hint: 'stop it first or use rm -f' });
        }
        await this.kill(id, 'SIGKILL', { all: true }).catch(() => {});
        await this.wait(id, { signal: AbortSignal.timeout(10_000) }).catch(() => {});
      }
    }
    if (this.runc.hasState(id)) await this.runc.delete(id, { force: true }).catch(() => {});
    const snap = await this.snapshotter();
    // (not mounted is fine for unmount)
    await snap.unmount(p.rootfs).catch(async () => {
      // a busy or half-broken mount: detach it lazily so the directory can go
      const { native, MNT_DETACH } = await import('../archive/native.js');
      try {
        native().umount2(p.rootfs, MNT_DETACH);
      } catch {
        /* not mounted after all */
      }
    });
    // The container's own directory holds berth's small files, its log and the (now unmounted)
    // rootfs: removed synchronously while the snapshot (the container's writes) goes on the pool.
    const snapGone = snap.remove(record?.snapshotKey ?? `ctr-${id}`).catch(() => {});
    rmSync(p.dir, { recursive: true, force: true });
    if (record) this.records.releaseNameSync(record.name, id);
    await snapGone;
  }

  /** Remove every container that is not running; the removed ids. */
  async prune(): Promise<string[]> {
    const out: string[] = [];
    for (const i of await this.list()) {
      if (i.status === 'running') continue;
      await this.remove(i.record.id, { force: true, exited: true });
      out.push(i.record.id);
    }
    return out;
  }

  /** Snapshot keys of every container (for snapshot gc). */
  async snapshotKeys(): Promise<Set<string>> {
    const s = new Set<string>();
    for (const i of await this.list()) s.add(i.record.snapshotKey);
    return s;
  }

  // ---- exec ----

  async exec(id: string, o: ExecOptions, io: SuperviseIO): Promise<number> {
    const info = await this.info(id);
    if (info.status !== 'running') throw new BerthError('INVALID_ARGUMENT', `container ${info.record.name} is not running`, { hint: 'start it first (berth start)' });
    if (o.args.length === 0) throw new BerthError('INVALID_ARGUMENT', 'exec needs a command');
    const p = this.paths(id);
    const spec = JSON.parse(await readFile(p.config, 'utf8')) as RuntimeSpec;
    const base = spec.process;
    let user = { uid: base.user.uid, gid: base.user.gid, additionalGids: base.user.additionalGids ?? [], home: base.env.find((e) => e.startsWith('HOME='))?.slice(5) ?? '/' };
    if (o.user) {
      const [passwd, group] = await Promise.all([readInRoot(p.rootfs, '/etc/passwd'), readInRoot(p.rootfs, '/etc/group')]);
      user = resolveUser(o.user, passwd, group);
    }
    const cwd = o.workdir ?? base.cwd;
    if (!cwd.startsWith('/')) throw new BerthError('INVALID_ARGUMENT', `the working directory ${JSON.stringify(cwd)} must be an absolute path`);
    if (/^\/proc(\/|$)/.test(cwd.replace(/\/+/g, '/'))) throw new BerthError('INVALID_ARGUMENT', `refusing working directory ${cwd}: exec never starts under /proc`);
    const proc = buildProcess({ args: o.args, env: mergeEnv(base.env, o.env), cwd, user, tty: !!o.tty });
    proc.capabilities = base.capabilities!;
    proc.noNewPrivileges = base.noNewPrivileges ?? false;
    if (base.rlimits) proc.rlimits = base.rlimits;
    if (base.apparmorProfile) proc.apparmorProfile = base.apparmorProfile;
    const tty = !!o.tty && io.tty;
    const res = await execProcess(this.runc, {
      id,
      process: proc,
      stateDir: p.dir,
      tty,
      io: {
        stdin: o.interactive && io.stdin === 'inherit' ? process.stdin : 'ignore',
        ...(io.stdout ? { stdout: io.stdout as NodeJS.WritableStream & import('node:stream').Writable } : {}),
        ...(io.stderr ? { stderr: io.stderr as NodeJS.WritableStream & import('node:stream').Writable } : {}),
      },
      ...(io.forwardSignals ? { forwardSignals: io.forwardSignals } : {}),
    });
    if (res.error) throw res.error;
    return res.exitCode;
  }

  // ---- logs ----

  /** Read the log: entries (after `tail`), then with `follow` new ones until the container stops. */
  async logs(id: string, o: { follow?: boolean; tail?: number; signal?: AbortSignal }, onEntry: (e: LogEntry) => void): Promise<void> {
    await this.readRecord(id);
    await readLog(this.paths(id).log, { ...o, running: async () => (await this.info(id).catch(() => undefined))?.status === 'running' }, onEntry);
  }
}
