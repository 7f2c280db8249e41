/**
 * Finding a BuildKit daemon, or starting a private one: when no address is given and none
 * answers at buildctl's default, and a `buildkitd` binary is on PATH and berth runs as root,
 * berth starts buildkitd with its state in `<root>/buildkit` and a unix socket there (OCI worker),
 * and stops it after the build unless asked to keep it (`--keep-buildkitd`; `berth buildkit stop`).
 */
import { constants } from 'node:fs';
import { access, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { BerthError } from '../../errors.js';
import { pidAlive } from '../../store/lock.js';
import { mkdirp } from '../../store/store.js';
import { Buildctl } from '../buildctl.js';

/** buildctl's own default address. */
export const DEFAULT_ADDR = 'unix:///run/buildkit/buildkitd.sock';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export function buildkitDir(root: string): string {
  return join(root, 'buildkit');
}

/** The private daemon's socket: under the root (a unix socket path has room for ~107 bytes). */
export function privateAddr(root: string): string {
  return `unix://${join(buildkitDir(root), 'buildkitd.sock')}`;
}

const pidFile = (root: string) => join(buildkitDir(root), 'buildkitd.pid');

/** An executable on PATH, or undefined. */
export async function onPath(name: string): Promise<string | undefined> {
  if (name.includes('/')) return (await access(name, constants.X_OK).then(() => true, () => false)) ? name : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    if (await access(p, constants.X_OK).then(() => true, () => false)) return p;
  }
  return undefined;
}

/** The pid of a private buildkitd berth left running for this root, or undefined. */
export async function keptDaemon(root: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidFile(root), 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
}

export interface Daemon {
  buildctl: Buildctl;
  /** Started by berth for this build. */
  started: boolean;
  /** One line: which daemon and why. */
  why: string;
  /** Stop it when berth started it and it is not to be kept. */
  release(): Promise<void>;
}

const noop = async () => {};

/**
 * The daemon to build with: an explicit address (taken as it is: buildctl reports when it does
 * not answer), a private daemon berth left running, the default address when it answers, or a new
 * private daemon.
 */
export async function findDaemon(
  buildctl: Buildctl,
  opts: { root: string; explicit: boolean; keep?: boolean; probe?: boolean; daemonBinary?: string; signal?: AbortSignal },
): Promise<Daemon> {
  if (opts.explicit && buildctl.addr) {
    if (opts.probe) {
      const p = await buildctl.probe(opts.signal ? { signal: opts.signal } : {});
      if (!p.ok) throw unreachable(buildctl.addr, p.why);
    }
    return { buildctl, started: false, why: `BuildKit at ${buildctl.addr}`, release: noop };
  }
  const mine = buildctl.withAddr(privateAddr(opts.root));
  if (await keptDaemon(opts.root)) return { buildctl: mine, started: false, why: `berth's running buildkitd (${mine.addr})`, release: noop };
  const def = buildctl.withAddr(DEFAULT_ADDR);
  const p = await def.probe({ timeoutMs: 5000, ...(opts.signal ? { signal: opts.signal } : {}) });
  if (p.ok) return { buildctl: def, started: false, why: `BuildKit answers at ${DEFAULT_ADDR}`, release: noop };
  const bin = await onPath(opts.daemonBinary ?? process.env.BERTH_BUILDKITD ?? 'buildkitd');
  if (!bin || process.getuid?.() !== 0) {
    throw new BerthError('UNAVAILABLE', `no BuildKit daemon answers at ${DEFAULT_ADDR} (${p.why})`, {
      hint: bin
        ? 'run as root so berth can start buildkitd, or start buildkitd and set BUILDKIT_HOST or --buildkit-addr'
        : 'start buildkitd and set BUILDKIT_HOST or --buildkit-addr, or install buildkitd (berth starts it when run as root), or use --builder builtin',
    });
  }
  return startPrivate(mine, bin, opts);
}

function unreachable(addr: string, why: string): BerthError {
  return new BerthError('UNAVAILABLE', `BuildKit daemon at ${addr} does not answer (${why})`, {
    hint: 'start buildkitd there, or point BUILDKIT_HOST / --buildkit-addr at a running one',
  });
}

async function startPrivate(mine: Buildctl, bin: string, opts: { root: string; keep?: boolean; signal?: AbortSignal }): Promise<Daemon> {
  const dir = buildkitDir(opts.root);
  await mkdirp(dir);
  const sock = mine.addr!.slice('unix://'.length);
  if (Buffer.byteLength(sock) > 107) {
    throw new BerthError('UNAVAILABLE', `cannot start buildkitd: the socket path ${sock} is too long for a unix socket`, { hint: 'use a shorter --root, or start buildkitd yourself and set BUILDKIT_HOST' });
  }
  await unlink(sock).catch(() => {});
  const log = join(dir, 'buildkitd.log');
  const pid = Buildctl.startDaemon({ binary: bin, root: dir, addr: mine.addr!, logFile: log });
  await writeFile(pidFile(opts.root), String(pid));
  const stop = () => stopPid(opts.root, pid);
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (opts.signal?.aborted) {
      await stop();
      throw new BerthError('ABORTED', 'interrupted while starting buildkitd');
    }
    if (!pidAlive(pid)) {
      const tail = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-5);
      await rm(pidFile(opts.root), { force: true });
      throw new BerthError('UNAVAILABLE', `buildkitd (${bin}) exited right after starting`, { hint: `see ${log}`, detail: tail });
    }
    const p = await mine.probe({ timeoutMs: 3000 });
    if (p.ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new BerthError('UNAVAILABLE', `buildkitd (${bin}) did not answer within ${START_TIMEOUT_MS / 1000} s`, { hint: `see ${log}` });
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const why = `started a private buildkitd (${bin}, state in ${dir})${opts.keep ? ', kept running after the build (berth buildkit stop)' : ', stopped after the build'}`;
  return { buildctl: mine, started: true, why, release: opts.keep ? noop : stop };
}

async function stopPid(root: string, pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (pidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (pidAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await rm(pidFile(root), { force: true });
  await unlink(privateAddr(root).slice('unix://'.length)).catch(() => {});
}

/** `berth buildkit stop`: stop the private buildkitd kept for this root; false when none runs. */
export async function stopKeptDaemon(root: string): Promise<boolean> {
  const pid = await keptDaemon(root);
  if (pid === undefined) {
    await rm(pidFile(root), { force: true });
    return false;
  }
  await stopPid(root, pid);
  return true;
}
