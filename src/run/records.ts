/**
 * Container records at <root>/containers/<id>/, apart from images and from runc's state:
 *
 *   record.json   what the container is (id, name, image, snapshot key, command, options)
 *   state.json    what its process did (status, pids, exit code, times), written by its monitor
 *   config.json   the OCI bundle's runtime spec; rootfs/ is the overlay mount point
 *   ctr.log       docker json-file lines {log, stream, time}
 *
 * Names are claimed atomically as files in containers/.names/ (a second container with the
 * same name fails at the claim). A running container's monitor (the foreground `berth run` or a
 * detached monitor process) is identified by pid and start time, so a reused pid is not taken
 * for it.
 */
import { existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pidAlive, procStart } from '../store/lock.js';
import { BerthError, fromSystemError } from '../errors.js';
import { randomHex } from '../oci/digest.js';

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

export const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const ADJ = ['brave', 'calm', 'eager', 'fond', 'keen', 'lucid', 'merry', 'nimble', 'quiet', 'sharp', 'swift', 'tidy', 'vivid', 'witty', 'zen', 'bold'];
const NOUN = ['anchor', 'bollard', 'buoy', 'cleat', 'dock', 'ferry', 'galley', 'harbor', 'hull', 'jetty', 'keel', 'mast', 'pier', 'quay', 'rudder', 'wharf'];

export function randomName(): string {
  const b = Buffer.from(randomHex(3), 'hex');
  return `${ADJ[b[0]! % ADJ.length]}_${NOUN[b[1]! % NOUN.length]}_${b[2]!.toString(16).padStart(2, '0')}`;
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomHex(3)}`;
  // A record or state is a few hundred bytes: written synchronously (two syscalls and a close
  // beat two thread-pool trips; a run writes four states).
  writeFileSync(tmp, JSON.stringify(value, null, 1));
  renameSync(tmp, path);
}

/**
 * Whether a monitor process is alive: a zombie (nobody reaped it yet) is dead, and so is a pid
 * reused by another process (its start time differs from the one recorded). The one pid check
 * is the store's `pidAlive`.
 */
export function alive(pid: number | undefined, start?: string): boolean {
  if (!pid) return false;
  return pidAlive(pid, start ?? procStart(pid) ?? '');
}

/** The records of one berth root. */
export class Records {
  readonly dir: string;
  readonly namesDir: string;

  constructor(root: string) {
    this.dir = join(root, 'containers');
    this.namesDir = join(this.dir, '.names');
  }

  async init(): Promise<void> {
    try {
      await mkdir(this.namesDir, { recursive: true });
    } catch (e) {
      throw fromSystemError(e, `opening ${this.dir}`);
    }
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

  async readRecord(id: string): Promise<ContainerRecord> {
    try {
      return JSON.parse(readFileSync(this.paths(id).record, 'utf8')) as ContainerRecord;
    } catch (e) {
      throw new BerthError('NOT_FOUND', `no such container: ${id}`, { cause: e });
    }
  }

  async writeRecord(r: ContainerRecord): Promise<void> {
    await writeJsonAtomic(this.paths(r.id).record, r);
  }

  async readState(id: string): Promise<ContainerState> {
    try {
      return JSON.parse(readFileSync(this.paths(id).state, 'utf8')) as ContainerState;
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
    // Newest first; RFC 3339 times in code-point order (localeCompare would build an ICU collator).
    return out.sort((a, b) => (b.record.created < a.record.created ? -1 : b.record.created > a.record.created ? 1 : 0));
  }

  /** Find a container by full id, name, or unique id prefix. */
  async find(input: string): Promise<string> {
    if (/^[a-f0-9]{64}$/.test(input) && existsSync(this.paths(input).dir)) return input;
    const byName = NAME_RE.test(input) ? await readFile(join(this.namesDir, input), 'utf8').catch(() => undefined) : undefined;
    if (byName && existsSync(this.paths(byName.trim()).dir)) return byName.trim();
    if (/^[a-f0-9]+$/.test(input)) {
      const m = (await this.ids()).filter((id) => id.startsWith(input));
      if (m.length === 1) return m[0]!;
      if (m.length > 1) throw new BerthError('INVALID_ARGUMENT', `container id prefix ${input} is ambiguous`, { hint: 'give more characters' });
    }
    // A directory left without a record (a crash during create) is still found by full id.
    throw new BerthError('NOT_FOUND', `no such container: ${input}`, { hint: 'see berth ps -a' });
  }

  /** Claim a name for `id` atomically; a name held by a container that is gone is taken over. */
  async claimName(name: string, id: string): Promise<void> {
    if (!NAME_RE.test(name)) throw new BerthError('INVALID_ARGUMENT', `invalid container name ${JSON.stringify(name)}`, { hint: 'use [a-zA-Z0-9][a-zA-Z0-9_.-]+' });
    const f = join(this.namesDir, name);
    try {
      writeFileSync(f, id, { flag: 'wx' }); // one small file, synchronously (the create path waits on it)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const other = (await readFile(f, 'utf8').catch(() => '')).trim();
      if (other && existsSync(this.paths(other).dir)) {
        throw new BerthError('ALREADY_EXISTS', `the container name "${name}" is already in use by container ${other.slice(0, 12)}`, { hint: 'remove that container (berth rm) or choose another --name' });
      }
      await writeFile(f, id); // a stale claim whose container is gone
    }
  }

  /** releaseName, synchronously (a removal that waits on nothing else). */
  releaseNameSync(name: string, id: string): void {
    const f = join(this.namesDir, name);
    let owner = '';
    try {
      owner = readFileSync(f, 'utf8').trim();
    } catch {
      return;
    }
    if (owner !== id) return;
    try {
      unlinkSync(f);
    } catch {
      /* gone */
    }
  }

  async releaseName(name: string, id: string): Promise<void> {
    const f = join(this.namesDir, name);
    const owner = (await readFile(f, 'utf8').catch(() => '')).trim();
    if (owner === id) await unlink(f).catch(() => {});
  }
}
