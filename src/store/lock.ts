import { closeSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { open, readFile, rename, unlink, link } from 'node:fs/promises';
import { randomHex } from '../oci/digest.js';
import { BerthError, fromSystemError } from '../errors.js';

export interface LockOptions {
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface LockInfo {
  pid: number;
  host: string;
  token: string;
}

/**
 * THE pid-liveness check. Without `start`: whether a process with this pid exists (EPERM: it
 * exists but is not ours). With `start` (field 22 of /proc/PID/stat, see `procStart`): whether
 * that very process still runs: a zombie nobody reaped is dead, and so is a pid reused by
 * another process (its start time differs).
 */
export function pidAlive(pid: number, start?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (start !== undefined) {
    const st = procStat(pid);
    return st !== undefined && st.state !== 'Z' && st.state !== 'X' && st.start === start;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The start time (clock ticks since boot) of a process, to tell it from a later one with its pid. */
export function procStart(pid: number | 'self'): string | undefined {
  return procStat(pid)?.start;
}

/** The state letter and start time (fields 3 and 22) of /proc/PID/stat, or undefined. */
function procStat(pid: number | 'self'): { state: string; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, start: rest[19]! };
  } catch {
    return undefined;
  }
}

/** One synchronous attempt at the lock: its release, or undefined (taken, or any error: the caller retries). */
function tryLockSync(path: string, me: LockInfo): (() => Promise<void>) | undefined {
  const tmp = `${path}.${me.token}`;
  try {
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      writeSync(fd, JSON.stringify(me));
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  try {
    linkSync(tmp, path);
  } catch {
    return undefined;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
  }
  return async () => {
    let cur: LockInfo | undefined;
    try {
      cur = JSON.parse(readFileSync(path, 'utf8')) as LockInfo;
    } catch {
      return;
    }
    if (cur?.token !== me.token) return;
    try {
      unlinkSync(path);
    } catch {
      /* gone */
    }
  };
}

async function readInfo(path: string): Promise<LockInfo | undefined> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as LockInfo;
    return typeof v.pid === 'number' && typeof v.token === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An exclusive lock between processes: a file created with O_EXCL that names its owner.
 * A lock whose owner died on this host (kill -9) is taken over; a live owner is waited for.
 */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const me: LockInfo = { pid: process.pid, host: hostname(), token: randomHex(12) };
  // An uncontended lock (the common case) is taken synchronously: five small syscalls instead of
  // five thread-pool trips. A taken or failing one goes the asynchronous way below.
  const quick = tryLockSync(path, me);
  if (quick) return quick;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let delay = 2;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      // Write the owner to a temp file, then link it into place: the lock never exists empty.
      const tmp = `${path}.${me.token}`;
      const fh = await open(tmp, 'wx', 0o644);
      await fh.writeFile(JSON.stringify(me));
      await fh.close();
      try {
        await link(tmp, path);
        return async () => {
          const cur = await readInfo(path);
          if (cur?.token === me.token) await unlink(path).catch(() => {});
        };
      } finally {
        await unlink(tmp).catch(() => {});
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'EEXIST') throw fromSystemError(e, `taking lock ${path}`);
    }
    const owner = await readInfo(path);
    if (owner && owner.host === me.host && !pidAlive(owner.pid)) {
      // Stale: move it aside, then make sure what we moved is the stale one.
      const aside = `${path}.stale.${owner.token}`;
      try {
        await rename(path, aside);
        const moved = await readInfo(aside);
        if (moved && moved.token !== owner.token) await link(aside, path).catch(() => {});
        await unlink(aside).catch(() => {});
      } catch {
        /* someone else broke it first */
      }
      continue;
    }
    if (owner === undefined) {
      // Unreadable lock file (should not happen with link-into-place); treat as stale after a moment.
    }
    if (Date.now() > deadline) {
      throw new BerthError('UNAVAILABLE', `store is locked by process ${owner?.pid ?? 'unknown'} (${path})`, {
        hint: 'wait for that berth process to finish, or remove the lock file if that process is gone',
      });
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 100);
  }
}

export async function withLock<T>(path: string, fn: () => Promise<T>, opts?: LockOptions): Promise<T> {
  const release = await acquireLock(path, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}
