/**
 * Containers: records at <root>/containers/<id>/ apart from images and from runc's state.
 *
 *   record.json   what the container is (id, name, image, snapshot key, command, options)
 *   state.json    what its process did (status, pids, exit code, times), written by its monitor
 *   config.json   the OCI bundle's runtime spec; rootfs/ is the overlay mount point
 *   ctr.log       docker json-file lines {log, stream, time}
 *
 * A running container has a monitor: the foreground `berth run` itself, or a detached
 * `node dist/run/monitor.js` (like containerd-shim). The monitor runs `runc run` in the
 * foreground, so runc stays the container's parent, reaps it and reports its exit status.
 */
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { BerthError, fromSystemError, isBerthError } from '../errors.js';
import type { ImageView } from '../store/images.js';
import { getImage } from '../store/images.js';
import type { ContentStore } from '../store/store.js';
import type { OpOptions } from '../oci/content.js';
import { Runc, lastLine, startError, type RuncVersion } from './runc.js';
import { ensureMountpoint, mkdirInRoot, readInRoot } from './rootfs.js';
import {
  RUNTIME_DIRS,
  RUNTIME_FILES,
  buildProcess,
  buildSpec,
  hostsFile,
  mergeEnv,
  parseTmpfs,
  parseVolume,
  processArgs,
  resolveUser,
  resolvConf,
  computeCaps,
  type BindSpec,
  type RuntimeSpec,
  type SpecMount,
} from './spec.js';

// ---- shapes ----

export interface ContainerRecord {
  id: string;
  name: string;
  image: { name?: string; digest: string; config: string; ref: string };
  snapshotKey: string;
  chainId: string;
  created: string;
  args: string[];
  hostname: string;
  autoRemove: boolean;
  tty: boolean;
  interactive: boolean;
  stopSignal: string;
  network: 'private' | 'host' | 'none';
}

export type ContainerStatus = 'created' | 'running' | 'exited';

export interface ContainerState {
  status: ContainerStatus;
  /** Host pid of the container's init. */
  pid?: number;
  /** The process that owns runc's stdio and records the exit (berth run, or the monitor). */
  monitorPid?: number;
  /** Its start time (/proc/PID/stat field 22), so a reused pid is not taken for it. */
  monitorStart?: string;
  exitCode?: number;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
}

export interface ContainerInfo {
  record: ContainerRecord;
  state: ContainerState;
  /** running, exited, created, or dead (its monitor died without recording an exit). */
  status: ContainerStatus | 'dead';
}

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
  /** Only shapes the error for an absent image: this library never pulls (the CLI does). */
  pull?: 'missing' | 'never' | 'always';
}

export interface ContainerPaths {
  dir: string;
  record: string;
  state: string;
  rootfs: string;
  config: string;
  log: string;
  runcLog: string;
  pidFile: string;
  hosts: string;
  resolv: string;
  hostname: string;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const ADJ = ['brave', 'calm', 'eager', 'fond', 'keen', 'lucid', 'merry', 'nimble', 'quiet', 'sharp', 'swift', 'tidy', 'vivid', 'witty', 'zen', 'bold'];
const NOUN = ['anchor', 'bollard', 'buoy', 'cleat', 'dock', 'ferry', 'galley', 'harbor', 'hull', 'jetty', 'keel', 'mast', 'pier', 'quay', 'rudder', 'wharf'];

function randomName(): string {
  const b = randomBytes(3);
  return `${ADJ[b[0]! % ADJ.length]}_${NOUN[b[1]! % NOUN.length]}_${b[2]!.toString(16).padStart(2, '0')}`;
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(value, null, 1));
  await rename(tmp, path);
}

/** Field 22 (start time in clock ticks) and the state letter of /proc/PID/stat, or undefined. */
function procStat(pid: number | 'self'): { state: string; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, start: rest[19]! };
  } catch {
    return undefined;
  }
}

/**
 * Whether a monitor process is alive: a zombie (nobody reaped it yet) is dead, and so is a pid
 * reused by another process (its start time differs from the one recorded).
 */
function alive(pid: number | undefined, start?: string): boolean {
  if (!pid) return false;
  const st = procStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return start === undefined || st.start === start;
}

export function signalNumber(sig: string | number): number {
  if (typeof sig === 'number') return sig;
  if (/^\d+$/.test(sig)) return Number(sig);
  const name = (sig.toUpperCase().startsWith('SIG') ? sig.toUpperCase() : `SIG${sig.toUpperCase()}`) as keyof typeof osConstants.signals;
  const n = osConstants.signals[name];
  if (n === undefined) throw new BerthError('INVALID_ARGUMENT', `invalid signal ${JSON.stringify(sig)}`, { hint: 'use a name such as SIGTERM or KILL, or a number' });
  return n;
}

/**
 * docker's RLIMIT_NOFILE (1048576), capped at this process's hard limit when it lacks
 * CAP_SYS_RESOURCE to raise it (runc would fail with EPERM).
 */
export async function nofileLimit(): Promise<number> {
  const want = 1048576;
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const eff = BigInt('0x' + (/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'));
    if (eff & (1n << 24n)) return want;
    const limits = await readFile('/proc/self/limits', 'utf8');
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

// ---- the snapshotter door (src/snapshot, written alongside) ----

interface SnapshotterLike {
  unpackImage(store: ContentStore, view: ImageView, opts?: OpOptions): Promise<{ chainId: string }>;
  prepare(key: string, parent: string | undefined): Promise<unknown>;
  mount(key: string, target: string): Promise<void>;
  unmount(target: string): Promise<void>;
  remove(key: string): Promise<unknown>;
}

async function openSnapshotter(root: string): Promise<SnapshotterLike> {
  const m = (await import('../snapshot/index.js')) as unknown as { Snapshotter: { open(root: string): Promise<SnapshotterLike> } };
  return m.Snapshotter.open(root);
}

// ---- the container set ----

export class Containers {
  readonly root: string;
  readonly dir: string;
  readonly namesDir: string;
  readonly runc: Runc;
  #snap: Promise<SnapshotterLike> | undefined;

  private constructor(root: string, runc?: Runc) {
    this.root = root;
    this.dir = join(root, 'containers');
    this.namesDir = join(this.dir, '.names');
    this.runc = runc ?? new Runc({ root: join(root, 'runc') });
  }

  static async open(root: string, opts: { runc?: Runc } = {}): Promise<Containers> {
    const c = new Containers(root, opts.runc);
    try {
      await mkdir(c.namesDir, { recursive: true });
      await mkdir(c.runc.root, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw fromSystemError(e, `opening ${c.dir}`);
    }
    return c;
  }

  snapshotter(): Promise<SnapshotterLike> {
    return (this.#snap ??= openSnapshotter(this.root));
  }

  paths(id: string): ContainerPaths {
    const dir = join(this.dir, id);
    return {
      dir,
      record: join(dir, 'record.json'),
      state: join(dir, 'state.json'),
      rootfs: join(dir, 'rootfs'),
      config: join(dir, 'config.json'),
      log: join(dir, 'ctr.log'),
      runcLog: join(dir, 'runc.log'),
      pidFile: join(dir, 'init.pid'),
      hosts: join(dir, 'hosts'),
      resolv: join(dir, 'resolv.conf'),
      hostname: join(dir, 'hostname'),
    };
  }

  /**
   * Check runc once per binary (cached by path, size and mtime under <root>/runc): missing runc is
   * UNAVAILABLE; the returned warning is set only the first time an old runc is seen.
   */
  async checkRunc(): Promise<RuncVersion & { fresh: boolean }> {
    const bin = this.runc.binary.includes('/') ? this.runc.binary : (process.env.PATH ?? '').split(':').map((d) => join(d || '.', this.runc.binary)).find((p) => existsSync(p));
    if (!bin) throw new BerthError('UNAVAILABLE', `runc not found (${this.runc.binary})`, { hint: 'install it: apt-get install runc' });
    const st = await stat(bin).catch(() => undefined);
    if (!st) throw new BerthError('UNAVAILABLE', `runc not found (${bin})`, { hint: 'install it: apt-get install runc' });
    const key = `${bin}:${st.size}:${st.mtimeMs}`;
    const cache = join(this.runc.root, 'version.json');
    try {
      const c = JSON.parse(await readFile(cache, 'utf8')) as RuncVersion & { key: string };
      if (c.key === key) return { ...c, fresh: false };
    } catch {
      /* no cache yet */
    }
    const v = await this.runc.version();
    await writeJsonAtomic(cache, { ...v, key }).catch(() => {});
    return { ...v, fresh: true };
  }

  // ---- lookup ----

  async readRecord(id: string): Promise<ContainerRecord> {
    try {
      return JSON.parse(await readFile(this.paths(id).record, 'utf8')) as ContainerRecord;
    } catch (e) {
      throw new BerthError('NOT_FOUND', `no such container: ${id}`, { cause: e });
    }
  }

  async readState(id: string): Promise<ContainerState> {
    try {
      return JSON.parse(await readFile(this.paths(id).state, 'utf8')) as ContainerState;
    } catch {
      return { status: 'created' };
    }
  }

  async writeState(id: string, s: ContainerState): Promise<void> {
    await writeJsonAtomic(this.paths(id).state, s);
  }

  async info(id: string): Promise<ContainerInfo> {
    const record = await this.readRecord(id);
    const state = await this.readState(id);
    let status: ContainerInfo['status'] = state.status;
    if (state.status === 'running' && !alive(state.monitorPid, state.monitorStart)) status = 'dead';
    return { record, state, status };
  }

  async ids(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n));
  }

  async list(): Promise<ContainerInfo[]> {
    const out: ContainerInfo[] = [];
    for (const id of await this.ids()) {
      try {
        out.push(await this.info(id));
      } catch {
        /* a half-written container: rm -f removes it */
      }
    }
    return out.sort((a, b) => b.record.created.localeCompare(a.record.created));
  }

  /** Find a container by full id, name, or unique id prefix. */
  async find(input: string): Promise<string> {
    if (/^[a-f0-9]{64}$/.test(input) && existsSync(this.paths(input).dir)) return input;
    const byName = await readFile(join(this.namesDir, input), 'utf8').catch(() => undefined);
    if (byName && NAME_RE.test(input) && existsSync(this.paths(byName.trim()).dir)) return byName.trim();
    if (/^[a-f0-9]+$/.test(input)) {
      const m = (await this.ids()).filter((id) => id.startsWith(input));
      if (m.length === 1) return m[0]!;
      if (m.length > 1) throw new BerthError('INVALID_ARGUMENT', `container id prefix ${input} is ambiguous`, { hint: 'give more characters' });
    }
    // A directory left without a record (a crash during create) is still found by full id.
    throw new BerthError('NOT_FOUND', `no such container: ${input}`, { hint: 'see berth ps -a' });
  }

  // ---- create ----

  /**
   * Create a container from an image: claim the name, unpack and prepare the snapshot, mount the
   * rootfs, write the bundle. Nothing is left behind when it fails.
   */
  async create(store: ContentStore, o: CreateOptions): Promise<ContainerRecord> {
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
    const view = await this.#image(store, o);
    let args = processArgs(view.config.config, { ...(o.entrypoint !== undefined ? { entrypoint: o.entrypoint } : {}), ...(o.cmd ? { cmd: o.cmd } : {}) });
    if (o.init) {
      const tini = findInit();
      binds.push({ source: tini, destination: INIT_PATH, readonly: true });
      args = [INIT_PATH, '--', ...args];
    }
    await this.checkRunc();

    const id = randomBytes(32).toString('hex');
    const name = o.name ?? randomName();
    const p = this.paths(id);
    const cleanup: (() => Promise<unknown>)[] = [];
    const undo = async () => {
      for (const f of cleanup.reverse()) await f().catch(() => {});
    };
    try {
      // The name is claimed atomically: a second container with it fails here.
      try {
        await writeFile(join(this.namesDir, name), id, { flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
          const other = (await readFile(join(this.namesDir, name), 'utf8').catch(() => '')).trim();
          if (other && existsSync(this.paths(other).dir)) {
            throw new BerthError('ALREADY_EXISTS', `the container name "${name}" is already in use by container ${other.slice(0, 12)}`, { hint: 'remove that container (berth rm) or choose another --name' });
          }
          await writeFile(join(this.namesDir, name), id); // a stale claim whose container is gone
        } else throw e;
      }
      cleanup.push(() => this.#releaseName(name, id));
      await mkdir(p.rootfs, { recursive: true });
      cleanup.push(() => rm(p.dir, { recursive: true, force: true }));

      const snap = await this.snapshotter();
      const { chainId } = await snap.unpackImage(store, view, { ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
      const snapshotKey = `ctr-${id}`;
      await snap.prepare(snapshotKey, chainId);
      cleanup.push(() => snap.remove(snapshotKey));
      await snap.mount(snapshotKey, p.rootfs);
      cleanup.push(() => this.#unmount(p.rootfs));

      const hostname = o.hostname ?? (network === 'host' ? osHostname() : id.slice(0, 12));
      const record: ContainerRecord = {
        id,
        name,
        image: { ...(view.name ? { name: view.name } : {}), digest: view.manifestDesc.digest, config: view.configDesc.digest, ref: o.image },
        snapshotKey,
        chainId,
        created: new Date().toISOString(),
        args,
        hostname,
        autoRemove: !!o.autoRemove,
        tty: !!o.tty,
        interactive: !!o.interactive,
        stopSignal: view.config.config?.StopSignal ?? 'SIGTERM',
        network,
      };
      const spec = await this.#bundle(p, record, view, o, binds, tmpfs);
      await writeFile(p.config, JSON.stringify(spec, null, 1));
      await writeJsonAtomic(p.record, record);
      await this.writeState(id, { status: 'created' });
      return record;
    } catch (e) {
      await undo();
      throw e;
    }
  }

  async #image(store: ContentStore, o: CreateOptions): Promise<ImageView> {
    // The library does not pull (run/ does not depend on registry/): the CLI pulls first.
    try {
      return await getImage(store, o.image);
    } catch (e) {
      if (isBerthError(e, 'NOT_FOUND') && o.pull !== 'never') {
        throw new BerthError('NOT_FOUND', e.message, { cause: e, hint: 'pull it (berth pull) or load it (berth load) first' });
      }
      throw e;
    }
  }

  async #bundle(p: ContainerPaths, r: ContainerRecord, view: ImageView, o: CreateOptions, binds: BindSpec[], tmpfs: SpecMount[]): Promise<RuntimeSpec> {
    const [passwd, group] = await Promise.all([readInRoot(p.rootfs, '/etc/passwd'), readInRoot(p.rootfs, '/etc/group')]);
    const user = resolveUser(o.user ?? view.config.config?.User, passwd, group);
    const cwd = o.workdir ?? (view.config.config?.WorkingDir || '/');
    // The runtime's own mount points are made real (symlinks an image put there replaced).
    for (const d of RUNTIME_DIRS) await ensureMountpoint(p.rootfs, d, 'dir');
    for (const f of RUNTIME_FILES) await ensureMountpoint(p.rootfs, f, 'file');
    if (binds.some((b) => b.destination === INIT_PATH)) await ensureMountpoint(p.rootfs, INIT_PATH, 'file');
    if (cwd !== '/') await mkdirInRoot(p.rootfs, cwd, user.uid, user.gid);
    const hostResolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    await writeFile(p.hosts, hostsFile(r.hostname, r.network));
    await writeFile(p.resolv, resolvConf(hostResolv, r.network));
    await writeFile(p.hostname, r.hostname + '\n');
    const env = mergeEnv(view.config.config?.Env, [`HOSTNAME=${r.hostname}`], o.env);
    return buildSpec({
      args: r.args,
      env,
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
      nofile: await nofileLimit(),
      annotations: { 'org.opencontainers.image.ref.name': r.image.name ?? r.image.ref, 'io.berth.container.name': r.name },
    });
  }

  async #releaseName(name: string, id: string): Promise<void> {
    const f = join(this.namesDir, name);
    const owner = (await readFile(f, 'utf8').catch(() => '')).trim();
    if (owner === id) await unlink(f).catch(() => {});
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
   * found: 127, not executable: 126) is thrown after the container was marked exited.
   */
  async supervise(id: string, io: SuperviseIO): Promise<number> {
    const r = await this.readRecord(id);
    const p = this.paths(id);
    await unlink(p.pidFile).catch(() => {});
    await unlink(p.runcLog).catch(() => {});
    const startedAt = new Date().toISOString();
    const monitorStart = procStat('self')?.start;
    const mon = { monitorPid: process.pid, ...(monitorStart ? { monitorStart } : {}) };
    await this.writeState(id, { status: 'running', ...mon, startedAt });
    const log = new LogWriter(p.log);
    const tty = r.tty && io.tty;
    const stdio: ('inherit' | 'ignore' | 'pipe')[] = tty ? ['inherit', 'inherit', 'inherit'] : [io.stdin === 'inherit' && r.interactive ? 'inherit' : 'ignore', 'pipe', 'pipe'];
    let child: ChildProcess;
    let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    try {
      ({ child, exited } = this.runc.run(id, { bundle: p.dir, pidFile: p.pidFile, log: p.runcLog, stdio, newSession: !tty }));
    } catch (e) {
      await this.#finish(id, r, { status: 'exited', exitCode: 255, startedAt, error: String(e) });
      throw e;
    }
    // Until runc wrote the pid file, stderr may be runc's own error message: hold it back.
    let started = false;
    const held: Buffer[] = [];
    const checkStarted = () => {
      if (!started && existsSync(p.pidFile)) {
        started = true;
        for (const b of held.splice(0)) emit('stderr', b);
        const pid = Number(readFileSync(p.pidFile, 'utf8'));
        this.writeState(id, { status: 'running', pid, ...mon, startedAt }).catch(() => {});
        io.onStarted?.(pid);
      }
      return started;
    };
    const emit = (stream: 'stdout' | 'stderr', b: Buffer) => {
      log.write(stream, b);
      const out = stream === 'stdout' ? io.stdout : io.stderr;
      if (out && !out.write(b)) {
        const src = stream === 'stdout' ? child.stdout : child.stderr;
        src?.pause();
        out.once('drain', () => src?.resume());
      }
    };
    child!.stdout?.on('data', (b: Buffer) => {
      checkStarted();
      emit('stdout', b);
    });
    child!.stderr?.on('data', (b: Buffer) => {
      if (checkStarted()) emit('stderr', b);
      else held.push(b);
    });
    const poll = setInterval(() => {
      if (checkStarted()) clearInterval(poll);
    }, 2);
    const forward = (sig: NodeJS.Signals) => {
      try {
        child.kill(sig); // runc forwards it to the container
      } catch {
        /* gone */
      }
    };
    io.forwardSignals?.(forward);
    let res: { code: number | null; signal: NodeJS.Signals | null };
    const streamsDone = Promise.all([child!.stdout, child!.stderr].map((s) => (s ? new Promise((r) => s.once('close', r)) : undefined)));
    try {
      res = await exited!;
      await Promise.race([streamsDone, new Promise((r) => setTimeout(r, 2000).unref())]);
    } catch (e) {
      clearInterval(poll);
      await log.close();
      await this.#finish(id, r, { status: 'exited', exitCode: 255, startedAt, error: String(e) });
      throw e;
    } finally {
      clearInterval(poll);
    }
    checkStarted();
    await log.close();
    if (!started) {
      const runcLog = await readFile(p.runcLog, 'utf8').catch(() => '');
      const msg = lastLine(runcLog) || lastLine(Buffer.concat(held).toString());
      const err = startError(msg, r.args);
      await this.#finish(id, r, { status: 'exited', exitCode: err.exitCode === 127 || err.exitCode === 126 ? err.exitCode : 128, startedAt, finishedAt: new Date().toISOString(), error: err.message });
      throw err;
    }
    const code = res.code ?? 128 + signalNumber(res.signal ?? 'SIGKILL');
    await this.#finish(id, r, { status: 'exited', exitCode: code, startedAt, finishedAt: new Date().toISOString() });
    return code;
  }

  /** After the process ended: record the exit, unmount, and remove when --rm. */
  async #finish(id: string, r: ContainerRecord, s: ContainerState): Promise<void> {
    const p = this.paths(id);
    // `runc run` deletes its container when it returns; only leftovers need a delete.
    if (this.runc.hasState(id)) await this.runc.delete(id, { force: true }).catch(() => {});
    if (r.autoRemove) {
      await this.remove(id, { force: true, exited: true });
      return;
    }
    await this.writeState(id, { ...s, finishedAt: s.finishedAt ?? new Date().toISOString() });
    await this.#unmount(p.rootfs).catch(() => {});
  }

  /**
   * Start the container detached: a monitor process (dist/run/monitor.js, in its own session)
   * runs it and records the exit. Resolves once runc started the process (or throws why not).
   */
  async startDetached(id: string): Promise<{ pid: number }> {
    try {
      return await this.#startDetached(id);
    } catch (e) {
      // The monitor cleans up after itself; this covers a monitor that never ran.
      if (existsSync(this.paths(id).dir) && (await this.info(id).catch(() => undefined))?.status !== 'running') {
        await this.#unmount(this.paths(id).rootfs).catch(() => {});
      }
      throw e;
    }
  }

  async #startDetached(id: string): Promise<{ pid: number }> {
    const info = await this.info(id);
    if (info.status === 'running') throw new BerthError('INVALID_ARGUMENT', `container ${info.record.name} is already running`);
    if (info.status === 'dead') await this.#cleanupStale(id);
    await this.remount(id);
    const monitor = fileURLToPath(new URL('./monitor.js', import.meta.url));
    const errLog = await open(join(this.paths(id).dir, 'monitor.log'), 'a');
    const child = spawn(process.execPath, [monitor, this.root, id], { detached: true, stdio: ['ignore', 'ignore', errLog.fd, 'pipe'] });
    await errLog.close();
    const chan = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
    let text = '';
    chan.on('data', (b: Buffer) => void (text += b.toString()));
    const code = await new Promise<number | null>((resolve) => {
      chan.once('end', () => resolve(null));
      chan.once('error', () => resolve(null));
      child.once('exit', (c) => resolve(c));
    });
    child.unref();
    chan.destroy();
    const line = text.trim().split('\n')[0] ?? '';
    if (line.startsWith('ok ')) return { pid: Number(line.slice(3)) };
    if (line.startsWith('err ')) {
      const e = JSON.parse(line.slice(4)) as { code: BerthError['code']; message: string; exitCode: number; hint?: string };
      throw new BerthError(e.code, e.message, { exitCode: e.exitCode, ...(e.hint ? { hint: e.hint } : {}) });
    }
    const why = await readFile(join(this.paths(id).dir, 'monitor.log'), 'utf8').catch(() => '');
    throw new BerthError('INTERNAL', `the container monitor exited${code !== null ? ` with status ${code}` : ''} before the container started: ${lastLine(why) || 'no message'}`);
  }

  /** Wait until the container is no longer running; its exit status. */
  async wait(id: string, opts: { signal?: AbortSignal; intervalMs?: number } = {}): Promise<number> {
    for (;;) {
      opts.signal?.throwIfAborted();
      const i = await this.info(id);
      if (i.status === 'exited') return i.state.exitCode ?? 0;
      if (i.status === 'dead') return i.state.exitCode ?? 255;
      if (i.status === 'created') return i.state.exitCode ?? 0;
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25));
    }
  }

  /** Send a signal to the container's init (runc kill). */
  async kill(id: string, signal: string | number = 'SIGKILL', opts: { all?: boolean } = {}): Promise<void> {
    const i = await this.info(id);
    if (i.status !== 'running') throw new BerthError('INVALID_ARGUMENT', `container ${i.record.name} is not running`);
    const n = signalNumber(signal);
    try {
      await this.runc.kill(id, n, opts);
    } catch (e) {
      // The process may have exited between the check and the kill.
      if ((await this.info(id)).status === 'running') throw e;
    }
  }

  /** Stop: the stop signal, then SIGKILL after `timeout` seconds. Returns the exit status. */
  async stop(id: string, opts: { timeout?: number; signal?: string } = {}): Promise<number | undefined> {
    const i = await this.info(id);
    if (i.status !== 'running') return i.state.exitCode;
    const t = opts.timeout ?? 10;
    await this.kill(id, opts.signal ?? i.record.stopSignal).catch(() => {});
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), Math.max(0, t) * 1000);
    try {
      return await this.wait(id, { signal: ac.signal });
    } catch {
      await this.kill(id, 'SIGKILL', { all: true }).catch(() => {});
      return await this.wait(id, { signal: AbortSignal.timeout(10_000) });
    } finally {
      clearTimeout(timer);
    }
  }

  async #cleanupStale(id: string): Promise<void> {
    if (this.runc.hasState(id)) await this.runc.delete(id, { force: true }).catch(() => {});
    const p = this.paths(id);
    await this.#unmount(p.rootfs).catch(() => {});
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
    if (await isMounted(p.rootfs)) {
      await snap.unmount(p.rootfs).catch(async () => {
        // a busy or half-broken mount: detach it lazily so the directory can go
        const { native, MNT_DETACH } = await import('../archive/native.js');
        native().umount2(p.rootfs, MNT_DETACH);
      });
    }
    await snap.remove(record?.snapshotKey ?? `ctr-${id}`).catch(() => {});
    await rm(p.dir, { recursive: true, force: true });
    if (record) await this.#releaseName(record.name, id);
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
    let user = { uid: base.user.uid, gid: base.user.gid, additionalGids: base.user.additionalGids ?? [], home: (base.env.find((e) => e.startsWith('HOME='))?.slice(5)) ?? '/' };
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
    const tag = randomBytes(6).toString('hex');
    const procPath = join(p.dir, `exec-${tag}.json`);
    const pidFile = join(p.dir, `exec-${tag}.pid`);
    const logPath = join(p.dir, `exec-${tag}.log`);
    await writeFile(procPath, JSON.stringify(proc));
    const tty = !!o.tty && io.tty;
    const stdio: ('inherit' | 'ignore' | 'pipe')[] = tty ? ['inherit', 'inherit', 'inherit'] : [o.interactive && io.stdin === 'inherit' ? 'inherit' : 'ignore', 'pipe', 'pipe'];
    try {
      const { child, exited } = this.runc.exec(id, { process: procPath, pidFile, log: logPath, tty, stdio, newSession: !tty });
      let started = false;
      const held: Buffer[] = [];
      const checkStarted = () => (started ||= existsSync(pidFile));
      child.stdout?.on('data', (b: Buffer) => io.stdout?.write(b));
      child.stderr?.on('data', (b: Buffer) => {
        if (checkStarted()) {
          for (const h of held.splice(0)) io.stderr?.write(h);
          io.stderr?.write(b);
        } else held.push(b);
      });
      io.forwardSignals?.((sig) => child.kill(sig));
      const streamsDone = Promise.all([child.stdout, child.stderr].map((s) => (s ? new Promise((r) => s.once('close', r)) : undefined)));
      const res = await exited;
      await Promise.race([streamsDone, new Promise((r) => setTimeout(r, 2000).unref())]);
      if (!checkStarted()) {
        const msg = lastLine(await readFile(logPath, 'utf8').catch(() => '')) || lastLine(Buffer.concat(held).toString());
        throw startError(msg, o.args);
      }
      for (const h of held.splice(0)) io.stderr?.write(h);
      return res.code ?? 128 + signalNumber(res.signal ?? 'SIGKILL');
    } finally {
      await Promise.all([procPath, pidFile, logPath].map((f) => unlink(f).catch(() => {})));
    }
  }

  // ---- logs ----

  /** Read the log: entries (after `tail`), then with `follow` new ones until the container stops. */
  async logs(id: string, o: { follow?: boolean; tail?: number; signal?: AbortSignal }, onEntry: (e: LogEntry) => void): Promise<void> {
    const p = this.paths(id);
    await this.readRecord(id);
    let offset = 0;
    let carry = '';
    let first = true;
    const readNew = async (): Promise<void> => {
      const fh = await open(p.log, 'r').catch(() => undefined);
      if (!fh) return;
      try {
        const { size } = await fh.stat();
        if (size <= offset) return;
        const buf = Buffer.alloc(size - offset);
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        offset += bytesRead;
        const text = carry + buf.subarray(0, bytesRead).toString('utf8');
        const lines = text.split('\n');
        carry = lines.pop() ?? '';
        let entries: LogEntry[] = [];
        for (const l of lines) {
          if (!l) continue;
          try {
            entries.push(JSON.parse(l) as LogEntry);
          } catch {
            entries.push({ log: l + '\n', stream: 'stdout', time: '' });
          }
        }
        if (first && o.tail !== undefined && o.tail >= 0) entries = o.tail === 0 ? [] : entries.slice(-o.tail);
        first = false;
        for (const e of entries) onEntry(e);
      } finally {
        await fh.close();
      }
    };
    await readNew();
    first = false;
    if (!o.follow) return;
    for (;;) {
      if (o.signal?.aborted) return;
      const i = await this.info(id).catch(() => undefined);
      if (!i || i.status !== 'running') {
        await readNew();
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
      await readNew();
    }
  }
}

export interface ExecOptions {
  args: string[];
  env?: string[];
  workdir?: string;
  user?: string;
  tty?: boolean;
  interactive?: boolean;
}

export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
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

/** docker's json-file lines, split at newlines (a partial line is written when the process ends). */
class LogWriter {
  #out: WriteStream;
  #carry: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  constructor(path: string) {
    this.#out = createWriteStream(path, { flags: 'a' });
    this.#out.on('error', () => {});
  }
  write(stream: 'stdout' | 'stderr', b: Buffer): void {
    const text = this.#carry[stream] + b.toString('utf8');
    const parts = text.split('\n');
    this.#carry[stream] = parts.pop() ?? '';
    const time = new Date().toISOString();
    let out = '';
    for (const l of parts) out += JSON.stringify({ log: l + '\n', stream, time }) + '\n';
    if (this.#carry[stream].length > 16384) {
      out += JSON.stringify({ log: this.#carry[stream], stream, time }) + '\n';
      this.#carry[stream] = '';
    }
    if (out) this.#out.write(out);
  }
  close(): Promise<void> {
    const time = new Date().toISOString();
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.#carry[s]) this.#out.write(JSON.stringify({ log: this.#carry[s], stream: s, time }) + '\n');
      this.#carry[s] = '';
    }
    return new Promise((r) => this.#out.end(r));
  }
}
