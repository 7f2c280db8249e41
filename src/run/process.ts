/**
 * One process on any bundle: `runProcess` runs `runc run` in the foreground (one runc
 * invocation; runc stays the process's parent, reaps it and exits with its status) and
 * `execProcess` runs `runc exec` in a running container. Both resolve to docker's status: the
 * process's own, 128+N for a signal, 127 for a command not found and 126 for one that cannot be
 * executed. No container record is needed: `berth run`, `exec`, the detached monitor and the
 * builder's RUN steps all stand on these.
 */
import type { StdioOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { BerthError } from '../errors.js';
import { lastLine, startError, type Runc, type RuncChild } from './runc.js';
import type { RuntimeSpec, SpecProcess } from './spec.js';
import { randomHex } from '../oci/digest.js';

/** Where the process's stdio goes; absent means 'ignore'. */
export interface ProcessIO {
  stdin?: Readable | 'ignore';
  stdout?: Writable | 'ignore';
  stderr?: Writable | 'ignore';
}

export interface ProcessOptions {
  /** runc's container id (unique under runc's --root while the process runs). */
  id: string;
  io: ProcessIO;
  /**
   * The spec's process has `terminal: true`: runc allocates the pty and copies it to berth's own
   * stdio, which must be a terminal (the io streams are not used).
   */
  tty?: boolean;
  /** Abort: SIGTERM to the process, then SIGKILL after `graceMs`. The status still resolves. */
  signal?: AbortSignal;
  /** Between SIGTERM and SIGKILL on abort (default 10 s). */
  graceMs?: number;
  /** Called with the process's host pid once it runs (runc wrote its pid file). */
  onStarted?: (pid: number) => void;
  /** Called once with a function that sends a signal to the process (through runc). */
  forwardSignals?: (forward: (sig: NodeJS.Signals) => void) => void;
}

export interface RunProcessOptions extends ProcessOptions {
  /** The bundle directory (config.json, and the rootfs it names). */
  bundle: string;
  /** Detached runs are the monitor's business (it calls this in the foreground). */
  detach?: false;
  /** Where runc writes its pid file and log (default: the bundle directory). */
  stateDir?: string;
}

export interface ExecProcessOptions extends ProcessOptions {
  /** The process to run (see spec.ts buildProcess). */
  process: SpecProcess;
  /** A directory for the process.json, pid file and log (default: runc's root). */
  stateDir?: string;
}

export interface ProcessResult {
  exitCode: number;
  /** Set when runc itself was ended by a signal (the status is then 128+N). */
  signal?: NodeJS.Signals;
  /** Why the command did not start (with exitCode 126 or 127). */
  error?: BerthError;
}

const DEFAULT_GRACE_MS = 10_000;

/**
 * Run the process of the bundle's config.json with `runc run` in the foreground and resolve to
 * its exit status. runc's state is deleted after the exit (also after an abort). A command that
 * is not found (127) or cannot be executed (126) resolves with `error` set; any other failure
 * to start (a bad mount, a bad spec) throws a PROCESS error.
 */
export async function runProcess(runc: Runc, o: RunProcessOptions): Promise<ProcessResult> {
  const dir = o.stateDir ?? o.bundle;
  const pidFile = join(dir, `${o.id}.pid`);
  const log = join(dir, `${o.id}.runc.log`);
  await Promise.all([unlink(pidFile).catch(() => {}), unlink(log).catch(() => {})]);
  try {
    const res = await drive(o, pidFile, log, (stdio) => runc.run(o.id, { bundle: o.bundle, pidFile, log, stdio, newSession: !o.tty }), async () => {
      const spec = JSON.parse(await readFile(join(o.bundle, 'config.json'), 'utf8')) as RuntimeSpec;
      return spec.process.args;
    });
    return res;
  } finally {
    // `runc run` deletes its container when it returns; only leftovers (runc killed) need this.
    if (runc.hasState(o.id)) await runc.delete(o.id, { force: true }).catch(() => {});
    await Promise.all([unlink(pidFile).catch(() => {}), unlink(log).catch(() => {})]);
  }
}

/** Run one more process in the running container `id` with `runc exec`, in the foreground. */
export async function execProcess(runc: Runc, o: ExecProcessOptions): Promise<ProcessResult> {
  const dir = o.stateDir ?? runc.root;
  const tag = `exec-${randomHex(6)}`;
  const procPath = join(dir, `${tag}.json`);
  const pidFile = join(dir, `${tag}.pid`);
  const log = join(dir, `${tag}.log`);
  await writeFile(procPath, JSON.stringify(o.process));
  try {
    return await drive(o, pidFile, log, (stdio) => runc.exec(o.id, { process: procPath, pidFile, log, tty: !!o.tty, stdio, newSession: !o.tty }), async () => o.process.args);
  } finally {
    await Promise.all([procPath, pidFile, log].map((f) => unlink(f).catch(() => {})));
  }
}

/** A signal name's number (SIGTERM, TERM, 15). */
export function signalNumber(sig: string | number): number {
  if (typeof sig === 'number') return sig;
  if (/^\d+$/.test(sig)) return Number(sig);
  const name = (sig.toUpperCase().startsWith('SIG') ? sig.toUpperCase() : `SIG${sig.toUpperCase()}`) as keyof typeof osConstants.signals;
  const n = osConstants.signals[name];
  if (n === undefined) throw new BerthError('INVALID_ARGUMENT', `invalid signal ${JSON.stringify(sig)}`, { hint: 'use a name such as SIGTERM or KILL, or a number' });
  return n;
}

function isStdStream(s: unknown, fd: number): boolean {
  return (fd === 0 && s === process.stdin) || (fd === 1 && s === process.stdout) || (fd === 2 && s === process.stderr);
}

/**
 * The shared body of run and exec: stdio wiring (runc's own error output held back until the
 * process started, so a failed start gives one clear error), start detection by pid file,
 * signal forwarding, abort, and the status.
 */
async function drive(
  o: ProcessOptions,
  pidFile: string,
  log: string,
  start: (stdio: StdioOptions) => RuncChild,
  command: () => Promise<readonly string[]>,
): Promise<ProcessResult> {
  o.signal?.throwIfAborted();
  const io = o.io;
  const stdin = io.stdin === undefined || io.stdin === 'ignore' ? 'ignore' : isStdStream(io.stdin, 0) ? 'inherit' : 'pipe';
  const stdout = io.stdout === undefined || io.stdout === 'ignore' ? 'ignore' : 'pipe';
  const stdio: StdioOptions = o.tty ? ['inherit', 'inherit', 'inherit'] : [stdin, stdout, 'pipe'];
  const { child, exited } = start(stdio);

  let started = false;
  let pid: number | undefined;
  const held: Buffer[] = [];
  const errOut = io.stderr === undefined || io.stderr === 'ignore' ? undefined : io.stderr;
  const checkStarted = (): boolean => {
    if (started || !existsSync(pidFile)) return started;
    started = true;
    for (const b of held.splice(0)) forward(errOut, child.stderr, b);
    const n = Number(readFileSync(pidFile, 'utf8'));
    if (n > 0) {
      pid = n;
      o.onStarted?.(n);
    }
    return true;
  };
  if (!o.tty) {
    if (stdin === 'pipe' && child.stdin) {
      child.stdin.on('error', () => {});
      (io.stdin as Readable).pipe(child.stdin);
    }
    const out = io.stdout === 'ignore' ? undefined : io.stdout;
    child.stdout?.on('data', (b: Buffer) => {
      checkStarted();
      forward(out, child.stdout, b);
    });
    child.stderr?.on('data', (b: Buffer) => {
      if (checkStarted()) forward(errOut, child.stderr, b);
      else held.push(b);
    });
  }
  const poll = setInterval(() => {
    if (checkStarted()) clearInterval(poll);
  }, 2);

  const send = (sig: NodeJS.Signals) => {
    try {
      child.kill(sig); // runc forwards it to the process
    } catch {
      /* gone */
    }
  };
  o.forwardSignals?.(send);
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    send('SIGTERM');
    killTimer = setTimeout(() => {
      // PID 1 of a pid namespace ignores SIGTERM without a handler, and runc cannot forward a
      // SIGKILL sent to itself: kill the process by its host pid (it is runc's child).
      try {
        if (pid === undefined) throw new Error('not started');
        process.kill(pid, 'SIGKILL');
      } catch {
        send('SIGKILL');
      }
    }, o.graceMs ?? DEFAULT_GRACE_MS);
    killTimer.unref();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });

  const streamsDone = Promise.all([child.stdout, child.stderr].map((s) => (s ? new Promise((r) => s.once('close', r)) : undefined)));
  let res: { code: number | null; signal: NodeJS.Signals | null };
  try {
    res = await exited;
    await Promise.race([streamsDone, new Promise((r) => setTimeout(r, 2000).unref())]);
  } finally {
    clearInterval(poll);
    if (killTimer) clearTimeout(killTimer);
    o.signal?.removeEventListener('abort', onAbort);
    if (stdin === 'pipe' && child.stdin) (io.stdin as Readable).unpipe(child.stdin);
  }
  checkStarted();
  if (!started) {
    const msg = lastLine(await readFile(log, 'utf8').catch(() => '')) || lastLine(Buffer.concat(held).toString());
    const err = startError(msg, await command().catch(() => []));
    if (err.exitCode === 126 || err.exitCode === 127) return { exitCode: err.exitCode, error: err };
    if (o.signal?.aborted) return { exitCode: 128 + signalNumber(res.signal ?? 'SIGTERM'), ...(res.signal ? { signal: res.signal } : {}) };
    throw err;
  }
  if (res.code !== null) return { exitCode: res.code };
  const sig = res.signal ?? 'SIGKILL';
  return { exitCode: 128 + signalNumber(sig), signal: sig };
}

/** Write to `out` with backpressure on the source pipe. */
function forward(out: Writable | undefined, src: Readable | null, b: Buffer): void {
  if (!out) return;
  if (!out.write(b)) {
    src?.pause();
    out.once('drain', () => src?.resume());
  }
}
