/**
 * The detached container monitor's protocol, both ends in one place. `berth run -d` and
 * `berth start` spawn `node dist/run/monitor-main.js ROOT ID` in its own session (like
 * containerd-shim); it runs the container in the foreground (runProcess), writes the log,
 * records the exit status, unmounts the rootfs and removes the container when it was started
 * with --rm. On fd 3 it tells its parent exactly one line:
 *
 *   ok PID        the container's process runs (host pid)
 *   err {json}    it could not start: {code, message, exitCode, hint?} of a BerthError
 *   exit N        it ended before the parent stopped listening (only when `ok` was not sent)
 */
import { spawn } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BerthError, type ErrorCode } from '../errors.js';
import { lastLine } from './runc.js';

/** The monitor's entry script (next to this module in dist/). */
export const MONITOR_ENTRY = fileURLToPath(new URL('./monitor-main.js', import.meta.url));

/**
 * Parent side: start the monitor for container `id` of `root` and wait for its one line.
 * Resolves with the container's pid, or throws the BerthError the monitor reported. `dir` holds
 * monitor.log (the monitor's own stderr).
 */
export async function spawnMonitor(root: string, id: string, dir: string): Promise<{ pid: number }> {
  const errPath = join(dir, 'monitor.log');
  const errLog = await open(errPath, 'a');
  const child = spawn(process.execPath, [MONITOR_ENTRY, root, id], { detached: true, stdio: ['ignore', 'ignore', errLog.fd, 'pipe'] });
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
    const e = JSON.parse(line.slice(4)) as { code: ErrorCode; message: string; exitCode: number; hint?: string };
    throw new BerthError(e.code, e.message, { exitCode: e.exitCode, ...(e.hint ? { hint: e.hint } : {}) });
  }
  const why = await readFile(errPath, 'utf8').catch(() => '');
  throw new BerthError('INTERNAL', `the container monitor exited${code !== null ? ` with status ${code}` : ''} before the container started: ${lastLine(why) || 'no message'}`);
}

/** Monitor side: the fd-3 channel to the parent (each message is sent at most once in total). */
export function parentChannel(): { started(pid: number): void; failed(e: unknown): void; exited(code: number): void } {
  let chan: Socket | undefined;
  try {
    chan = new Socket({ fd: 3, readable: false, writable: true });
    chan.on('error', () => {});
  } catch {
    chan = undefined;
  }
  const tell = (line: string) => {
    if (!chan) return;
    chan.end(line + '\n');
    chan = undefined;
  };
  return {
    started: (pid) => tell(`ok ${pid}`),
    exited: (code) => tell(`exit ${code}`),
    failed: (e) => {
      const err = e instanceof BerthError ? e : new BerthError('INTERNAL', (e as Error)?.message ?? String(e));
      tell(`err ${JSON.stringify({ code: err.code, message: err.message, exitCode: err.exitCode, ...(err.hint ? { hint: err.hint } : {}) })}`);
    },
  };
}
