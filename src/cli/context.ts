import type { Berth, ProgressEvent } from '../index.js';

export interface GlobalArgs {
  root?: string;
  debug?: boolean;
  progress?: 'auto' | 'tty' | 'plain' | 'json' | 'none';
}

/** What every command handler gets: lazy store, output writers, progress. */
export interface CliContext {
  /** The library's front door for `--root` (else BERTH_ROOT or the default), opened on first use (once per process). */
  berth(): Promise<Berth>;
  /** Write a line (or lines) of results to stdout. */
  out(text: string): void;
  /** Write one JSON document to stdout. */
  json(value: unknown): void;
  /** Write a warning line to stderr. */
  warn(text: string): void;
  /** A progress callback for library calls (stderr only); call `done()` when finished, `done(false)` on failure. */
  progress(label?: string): { onProgress: (e: ProgressEvent) => void; done: (ok?: boolean) => void };
  /** Aborted on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  /** Set the process exit code without throwing (e.g. a container's status). */
  setExitCode(code: number): void;
  readonly debug: boolean;
  /** For verbs with `split` (run, exec): berth's arguments after the verb, and the rest verbatim. */
  readonly split?: { own: readonly string[]; rest: readonly string[] };
}
