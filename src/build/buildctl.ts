/**
 * The one typed wrapper around BuildKit's binaries: `buildctl` (version, a daemon probe, builds)
 * and `buildkitd` (a private daemon berth starts when none answers). execa is imported here and
 * in the Runc wrapper only; every other file speaks to BuildKit through this class.
 */
import { execa, type ResultPromise } from 'execa';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { BerthError } from '../errors.js';

/** TLS for `tcp://` addresses, named as buildctl's global flags name them. */
export interface BuildctlTls {
  /** `--tlsservername` */
  serverName?: string;
  /** `--tlscacert` */
  caCert?: string;
  /** `--tlscert` */
  cert?: string;
  /** `--tlskey` */
  key?: string;
  /** `--tlsdir`: a directory with ca.pem, cert.pem and key.pem. */
  dir?: string;
}

export interface BuildctlOptions {
  /** The buildctl binary (default `BERTH_BUILDCTL`, else `buildctl` on PATH). */
  binary?: string;
  /** Daemon address (default `BUILDKIT_HOST`, else buildctl's own default). */
  addr?: string;
  tls?: BuildctlTls;
}

/** A parsed `buildctl --version`. */
export interface BuildctlVersion {
  raw: string;
  major: number;
  minor: number;
  patch: number;
}

/** The oldest buildctl berth drives: `--oci-layout` named contexts and `--metadata-file` came in v0.11. */
export const MIN_BUILDCTL: readonly [number, number] = [0, 11];
/** From this version on buildctl prints `--progress rawjson`; older ones are read from `plain`. */
export const RAWJSON_BUILDCTL: readonly [number, number] = [0, 13];

export function parseBuildctlVersion(out: string): BuildctlVersion | undefined {
  const m = /\bv?(\d+)\.(\d+)\.(\d+)\S*/.exec(out);
  if (!m) return undefined;
  return { raw: m[0], major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

export function versionAtLeast(v: BuildctlVersion, min: readonly [number, number]): boolean {
  return v.major > min[0] || (v.major === min[0] && v.minor >= min[1]);
}

/** A running `buildctl build`: its stdout (the `dest=-` output) and its exit. */
export interface BuildctlRun {
  /** The output stream when `stdout: 'pipe'` was asked for. */
  stdout: Readable | undefined;
  /** Resolves when buildctl exits (never rejects): exit code, signal, and stderr lines not consumed. */
  done: Promise<{ exitCode: number | undefined; signal: string | undefined; cancelled: boolean }>;
  /** Stop buildctl (SIGTERM, SIGKILL after 3 s). */
  kill(): void;
}

export class Buildctl {
  readonly binary: string;
  readonly addr: string | undefined;
  readonly tls: BuildctlTls;

  constructor(opts: BuildctlOptions = {}) {
    this.binary = opts.binary ?? process.env.BERTH_BUILDCTL ?? 'buildctl';
    this.addr = opts.addr ?? (process.env.BUILDKIT_HOST || undefined);
    this.tls = opts.tls ?? {};
  }

  /** A copy talking to another daemon. */
  withAddr(addr: string): Buildctl {
    return new Buildctl({ binary: this.binary, addr, tls: this.tls });
  }

  /** Global flags: address and TLS. */
  globalArgs(): string[] {
    const a: string[] = [];
    if (this.addr) a.push('--addr', this.addr);
    const t = this.tls;
    if (t.serverName) a.push('--tlsservername', t.serverName);
    if (t.caCert) a.push('--tlscacert', t.caCert);
    if (t.cert) a.push('--tlscert', t.cert);
    if (t.key) a.push('--tlskey', t.key);
    if (t.dir) a.push('--tlsdir', t.dir);
    return a;
  }

  /** `buildctl --version`, or undefined when it is not installed. */
  async version(signal?: AbortSignal): Promise<string | undefined> {
    return (await this.versionInfo(signal))?.raw;
  }

  /** The parsed version, or undefined when buildctl is not installed. */
  async versionInfo(signal?: AbortSignal): Promise<BuildctlVersion | undefined> {
    try {
      const r = await execa(this.binary, ['--version'], { timeout: 10_000, reject: false, ...(signal ? { cancelSignal: signal } : {}) });
      if ((r as { code?: string }).code === 'ENOENT' || (r.failed && r.exitCode === undefined)) return undefined;
      if (r.exitCode !== 0) return undefined;
      return parseBuildctlVersion(r.stdout) ?? { raw: r.stdout.trim(), major: 0, minor: 0, patch: 0 };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new BerthError('PROCESS', `running ${this.binary} --version failed`, { cause: e });
    }
  }

  /**
   * Whether the daemon answers: `buildctl debug workers` within `timeoutMs`. The reason is
   * buildctl's own last line when it does not.
   */
  async probe(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<{ ok: true; workers: number } | { ok: false; why: string }> {
    const r = await execa(this.binary, [...this.globalArgs(), 'debug', 'workers'], {
      timeout: opts.timeoutMs ?? 10_000,
      reject: false,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    });
    if (r.exitCode === 0) return { ok: true, workers: r.stdout.split('\n').filter((l) => l.trim()).length - 1 };
    if (r.timedOut) return { ok: false, why: `no answer within ${Math.round((opts.timeoutMs ?? 10_000) / 1000)} s` };
    const last = String(r.stderr ?? '').trim().split('\n').pop() ?? '';
    return { ok: false, why: last.replace(/^error:\s*/, '') || `exit code ${r.exitCode}` };
  }

  /**
   * Start `buildctl build ARGS`. stderr is read line by line into `onStderrLine`; stdout is a
   * stream ('pipe') or discarded ('ignore'). Aborting `signal` stops buildctl.
   */
  build(args: readonly string[], opts: { stdout: 'pipe' | 'ignore'; onStderrLine: (line: string) => void; signal?: AbortSignal; env?: Record<string, string> }): BuildctlRun {
    let child: ResultPromise;
    try {
      child = execa(this.binary, [...this.globalArgs(), 'build', ...args], {
        stdin: 'ignore',
        stdout: opts.stdout,
        stderr: 'pipe',
        buffer: false,
        reject: false,
        forceKillAfterDelay: 3000,
        // No signal-exit hook: it would re-raise SIGINT on berth once the CLI's own handler has run;
        // Ctrl-C reaches buildctl through cancelSignal instead.
        cleanup: false,
        ...(opts.env ? { env: opts.env } : {}),
        ...(opts.signal ? { cancelSignal: opts.signal } : {}),
      });
    } catch (e) {
      throw new BerthError('PROCESS', `starting ${this.binary} failed`, { cause: e });
    }
    const lines = createInterface({ input: child.stderr!, crlfDelay: Infinity });
    lines.on('line', opts.onStderrLine);
    const stderrClosed = new Promise<void>((res) => lines.once('close', () => res()));
    const done = (async () => {
      const r = await child;
      await stderrClosed;
      return {
        exitCode: r.exitCode,
        signal: r.signal,
        cancelled: r.isCanceled,
      };
    })();
    return {
      stdout: opts.stdout === 'pipe' ? (child.stdout as Readable) : undefined,
      done,
      kill: () => void child.kill('SIGTERM'),
    };
  }

  /**
   * Start a `buildkitd` (binary `binary`, default `BERTH_BUILDKITD` or `buildkitd` on PATH) in its
   * own session, logging to `logFile`; returns its pid. The caller waits for it to answer.
   */
  static startDaemon(opts: { binary?: string; root: string; addr: string; logFile: string }): number {
    const bin = opts.binary ?? process.env.BERTH_BUILDKITD ?? 'buildkitd';
    // node's spawn (not execa): the daemon outlives berth, with its log file as stdout/stderr
    // directly rather than through a pipe berth would have to keep draining.
    const fd = openSync(opts.logFile, 'a');
    try {
      const child = spawn(bin, ['--root', opts.root, '--addr', opts.addr, '--oci-worker=true', '--containerd-worker=false'], {
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      child.on('error', () => {});
      child.unref();
      if (child.pid === undefined) throw new BerthError('UNAVAILABLE', `could not start ${bin}`, { hint: 'install BuildKit (buildkitd) or set --buildkit-addr' });
      return child.pid;
    } finally {
      closeSync(fd);
    }
  }
}
