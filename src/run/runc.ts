/**
 * The one typed wrapper around the runc binary (containerd/go-runc's shape): global flags, one
 * options object per verb, exit codes and stderr turned into typed BerthErrors. runc is started
 * with node:child_process only (spawn for run/exec, execFile for short verbs): execa is the
 * Buildctl wrapper's door, and a `run`, `stop` or `kill` never loads it.
 */
import { execFile, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../errors.js';

export interface RuncOptions {
  /** The runc binary (default `runc` on PATH, or BERTH_RUNC). */
  binary?: string;
  /** runc's state directory (`--root`), owned by berth: `<berthroot>/runc`. */
  root: string;
  /** `--log FILE` (runc writes errors there too). */
  log?: string;
  /** `--log-format`. */
  logFormat?: 'text' | 'json';
  /** `--systemd-cgroup`. */
  systemdCgroup?: boolean;
  /** `--debug`. */
  debug?: boolean;
}

export interface RuncState {
  ociVersion: string;
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  bundle: string;
  rootfs: string;
  created: string;
  owner?: string;
  annotations?: Record<string, string>;
}

export interface RuncVersion {
  version: string;
  commit?: string;
  spec?: string;
  /** Set when this runc predates the 2025 security fixes (CVE-2025-31133/52565/52881). */
  warning?: string;
}

export interface CreateOptions {
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot?: boolean;
  noNewKeyring?: boolean;
}

export interface RunOptions extends CreateOptions {
  detach?: boolean;
  /** Extra per-call log file (overrides the global one for this call). */
  log?: string;
  /** stdio of the runc process (and so of the container when not detached). */
  stdio?: StdioOptions;
  /** Put runc in its own session (signals reach it only through berth). */
  newSession?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface ExecOptions {
  /** Path of a process.json (`--process`). */
  process: string;
  detach?: boolean;
  tty?: boolean;
  pidFile?: string;
  consoleSocket?: string;
  log?: string;
  stdio?: StdioOptions;
  newSession?: boolean;
}

export interface KillOptions {
  /** `--all`: signal every process of the container. */
  all?: boolean;
}

export interface DeleteOptions {
  force?: boolean;
}

/** A runc process that stays in the foreground (run, exec): the child and a promise of its status. */
export interface RuncChild {
  child: ChildProcess;
  /** Resolves with runc's exit status (a container status, or 1/255 when runc itself failed). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The patched releases of each line: below these, runc lacks the November 2025 fixes. */
const FIXED: ReadonlyArray<[number, number, number]> = [
  [1, 2, 8],
  [1, 3, 3],
];

export function parseRuncVersion(out: string): RuncVersion {
  const m = /runc version (\S+)/.exec(out);
  if (!m) throw new BerthError('UNAVAILABLE', `cannot read the runc version from ${JSON.stringify(out.slice(0, 80))}`);
  const version = m[1]!;
  const commit = /commit: (\S+)/.exec(out)?.[1];
  const spec = /spec: (\S+)/.exec(out)?.[1];
  const v: RuncVersion = { version, ...(commit ? { commit } : {}), ...(spec ? { spec } : {}) };
  if (!runcHasSecurityFixes(version)) {
    v.warning = `runc ${version} predates the 2025 security fixes (CVE-2025-31133, CVE-2025-52565, CVE-2025-52881): upgrade to runc 1.2.8, 1.3.3 or 1.4.0 or later`;
  }
  return v;
}

/** Whether a runc version string is at or above the fixed release of its line. */
export function runcHasSecurityFixes(version: string): boolean {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-rc\.?(\d+))?/.exec(version);
  if (!m) return false;
  const [maj, min, pat] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const rc = m[4] === undefined ? undefined : Number(m[4]);
  if (maj > 1) return true;
  if (min >= 4) {
    if (min > 4 || pat > 0) return true;
    return rc === undefined || rc >= 2;
  }
  const fix = FIXED.find(([a, b]) => a === maj && b === min);
  if (!fix) return false;
  return pat >= fix[2] && rc === undefined;
}

/** What runc's stderr / log says, reduced to its last meaningful line. */
export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!;
    // JSON log lines: {"level":"error","msg":"..."}
    if (l.startsWith('{')) {
      try {
        const j = JSON.parse(l) as { level?: string; msg?: string };
        if (j.level === 'error' || j.level === 'fatal') return j.msg ?? l;
        continue;
      } catch {
        /* not JSON */
      }
    }
    return l;
  }
  return '';
}

/** Options of a short runc verb run to completion. */
export interface CallOptions {
  /** Kill runc after this many ms (it then counts as not started: UNAVAILABLE). */
  timeout?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Classify a runc start failure like docker does: a missing command exits 127, a command that
 * cannot be executed exits 126; anything else is a PROCESS error.
 */
export function startError(message: string, args: readonly string[] = []): BerthError {
  const cmd = args[0] ?? '';
  const msg = message.replace(/^runc (run|create|exec) failed: /, '');
  if (/executable file not found|no such file or directory/.test(msg) && /exec[: ]/.test(msg)) {
    return new BerthError('NOT_FOUND', `command ${JSON.stringify(cmd)} not found in the container: ${msg}`, {
      exitCode: 127,
      hint: 'check the command and the image PATH',
    });
  }
  if (/permission denied|is a directory|exec format error/.test(msg) && /exec[: ]/.test(msg)) {
    return new BerthError('PROCESS', `command ${JSON.stringify(cmd)} cannot be executed in the container: ${msg}`, { exitCode: 126 });
  }
  return new BerthError('PROCESS', `runc failed to start the container: ${msg || 'no error message'}`);
}

export class Runc {
  readonly binary: string;
  readonly root: string;
  readonly opts: RuncOptions;

  constructor(opts: RuncOptions) {
    this.opts = opts;
    this.binary = opts.binary ?? process.env.BERTH_RUNC ?? 'runc';
    this.root = opts.root;
  }

  /** Global flags before the verb. */
  globalArgs(log?: string): string[] {
    const a = ['--root', this.root];
    const lf = log ?? this.opts.log;
    if (lf) a.push('--log', lf, '--log-format', this.opts.logFormat ?? 'json');
    if (this.opts.systemdCgroup) a.push('--systemd-cgroup');
    if (this.opts.debug) a.push('--debug');
    return a;
  }

  #unavailable(e: unknown): BerthError {
    return new BerthError('UNAVAILABLE', `runc not found (${this.binary})`, { cause: e, hint: 'install it: apt-get install runc' });
  }

  /** Run a short verb to completion; non-zero exit becomes a PROCESS error with runc's last stderr line. */
  async #call(verb: string, args: string[], extra: CallOptions = {}): Promise<string> {
    // A plain execFile (DESIGN: execa is the door for buildctl only): stop, kill and rm -f pay no
    // ~100 ms for loading it.
    const r = await new Promise<{ stdout: string; stderr: string; exitCode: number | undefined; error?: Error }>((resolve) => {
      const child = execFile(
        this.binary,
        [...this.globalArgs(), verb, ...args],
        { encoding: 'utf8', maxBuffer: 64 << 20, ...(extra.timeout ? { timeout: extra.timeout } : {}), ...(extra.env ? { env: extra.env } : {}) },
        (e, stdout, stderr) => {
          const code = (e as { code?: unknown } | null)?.code;
          resolve({ stdout: String(stdout), stderr: String(stderr), exitCode: e ? (typeof code === 'number' ? code : undefined) : 0, ...(e ? { error: e } : {}) });
        },
      );
      child.stdin?.end();
    });
    if (r.exitCode === undefined) throw this.#unavailable(r.error); // runc did not start (ENOENT, EACCES) or was killed
    if (r.exitCode !== 0) {
      const line = lastLine(r.stderr) || `exit status ${r.exitCode}`;
      const code = /does not exist|not found|container .* does not exist/i.test(line) ? 'NOT_FOUND' : 'PROCESS';
      throw new BerthError(code, `runc ${verb} failed: ${line}`);
    }
    return r.stdout;
  }

  async version(): Promise<RuncVersion> {
    // A plain execFile: the first run on a root asks this, and execa would cost that run ~100 ms to load.
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(this.binary, ['--version'], { encoding: 'utf8', timeout: 30_000, maxBuffer: 1 << 20 }, (e, out) => {
        // A non-zero exit still printed what it printed; only a runc that did not start is unavailable.
        if (e && typeof (e as { code?: unknown }).code !== 'number') reject(this.#unavailable(e));
        else resolve(String(out));
      }).stdin?.end();
    });
    return parseRuncVersion(stdout);
  }

  async create(id: string, o: CreateOptions, extra: CallOptions = {}): Promise<void> {
    await this.#call('create', [...bundleArgs(o), id], extra);
  }

  async start(id: string): Promise<void> {
    await this.#call('start', [id]);
  }

  /**
   * `runc run` kept in the foreground: runc stays the container's parent, reaps it and exits
   * with its status (128+N for a signal). The caller owns the child (signals, stdio).
   */
  run(id: string, o: RunOptions): RuncChild {
    const args = [...this.globalArgs(o.log), 'run', ...bundleArgs(o), ...(o.detach ? ['--detach'] : []), id];
    return this.#spawn(args, o.stdio ?? 'inherit', o.newSession ?? false, o.env);
  }

  /** `runc exec` in the foreground (same shape as run). */
  exec(id: string, o: ExecOptions): RuncChild {
    const args = [...this.globalArgs(o.log), 'exec', '--process', o.process];
    if (o.detach) args.push('--detach');
    if (o.tty) args.push('--tty');
    if (o.pidFile) args.push('--pid-file', o.pidFile);
    if (o.consoleSocket) args.push('--console-socket', o.consoleSocket);
    args.push(id);
    return this.#spawn(args, o.stdio ?? 'inherit', o.newSession ?? false);
  }

  /** Whether runc still keeps state for `id` (cheaper than `runc state`: no process). */
  hasState(id: string): boolean {
    return existsSync(join(this.root, id));
  }

  #spawn(args: string[], stdio: StdioOptions, newSession: boolean, env?: NodeJS.ProcessEnv): RuncChild {
    const child = spawn(this.binary, args, { stdio, detached: newSession, ...(env ? { env } : {}) });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', (e) => reject((e as NodeJS.ErrnoException).code === 'ENOENT' ? this.#unavailable(e) : e));
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    return { child, exited };
  }

  async kill(id: string, signal: string | number = 'SIGTERM', o: KillOptions = {}): Promise<void> {
    await this.#call('kill', [...(o.all ? ['--all'] : []), id, String(signal)]);
  }

  /** Freeze every process of the container (cgroup freezer). */
  async pause(id: string): Promise<void> {
    await this.#call('pause', [id]);
  }

  /** Thaw a paused container. */
  async resume(id: string): Promise<void> {
    await this.#call('resume', [id]);
  }

  async delete(id: string, o: DeleteOptions = {}): Promise<void> {
    await this.#call('delete', [...(o.force ? ['--force'] : []), id]);
  }

  /** runc's state of a container, or undefined when runc does not know it. */
  async state(id: string): Promise<RuncState | undefined> {
    try {
      return JSON.parse(await this.#call('state', [id])) as RuncState;
    } catch (e) {
      if (e instanceof BerthError && e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
  }

  async list(): Promise<RuncState[]> {
    const out = await this.#call('list', ['--format', 'json']);
    const v = JSON.parse(out.trim() || 'null') as RuncState[] | null;
    return v ?? [];
  }

  /** PIDs (host pid namespace) of the container's processes. */
  async ps(id: string): Promise<number[]> {
    const out = await this.#call('ps', ['--format', 'json', id]);
    return (JSON.parse(out.trim() || 'null') as number[] | null) ?? [];
  }
}

function bundleArgs(o: CreateOptions): string[] {
  const a = ['--bundle', o.bundle];
  if (o.pidFile) a.push('--pid-file', o.pidFile);
  if (o.consoleSocket) a.push('--console-socket', o.consoleSocket);
  if (o.noPivot) a.push('--no-pivot');
  if (o.noNewKeyring) a.push('--no-new-keyring');
  return a;
}

