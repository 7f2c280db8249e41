import type { ProgressEvent } from '../oci/content.js';

export type ProgressMode = 'tty' | 'plain' | 'json' | 'none';

export function pickMode(requested: string | undefined, stream: NodeJS.WriteStream = process.stderr): ProgressMode {
  if (requested === 'json' || requested === 'plain' || requested === 'none' || requested === 'tty') return requested;
  return stream.isTTY ? 'tty' : 'plain';
}

function human(n: number): string {
  const u = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n < 10 && i > 0 ? n.toFixed(2) : n < 100 && i > 0 ? n.toFixed(1) : Math.round(n)}${u[i]}`;
}
export { human as humanSize };

/**
 * Render progress events on stderr: bars on a TTY, a line every few seconds in a CI log, NDJSON
 * with --progress json. Never writes to stdout.
 */
export function createProgress(mode: ProgressMode, label = '', stream: NodeJS.WriteStream = process.stderr) {
  const blobs = new Map<string, { size: number; done: number; state: string }>();
  let lastPlain = 0;
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const totals = () => {
    let size = 0;
    let done = 0;
    let finished = 0;
    for (const b of blobs.values()) {
      size += b.size;
      done += b.done;
      if (b.state !== 'active') finished++;
    }
    return { size, done, finished, count: blobs.size };
  };
  const draw = () => {
    if (mode !== 'tty') return;
    const lines: string[] = [];
    for (const [d, b] of blobs) {
      const w = 30;
      const frac = b.size > 0 ? Math.min(1, b.done / b.size) : 1;
      const bar = '='.repeat(Math.round(frac * w)).padEnd(w, ' ');
      lines.push(`${d.slice(7, 19)}: ${b.state === 'active' ? `[${bar}] ${human(b.done)}/${human(b.size)}` : b.state}`);
    }
    const shown = lines.slice(-12);
    stream.write((drawn > 0 ? `\x1b[${drawn}A` : '') + shown.map((l) => `\x1b[2K${l}\n`).join(''));
    drawn = shown.length;
  };
  const plain = (force = false) => {
    if (mode !== 'plain') return;
    const now = Date.now();
    if (!force && now - lastPlain < 2000) return;
    lastPlain = now;
    const t = totals();
    if (t.count > 0) stream.write(`${label ? label + ': ' : ''}${t.finished}/${t.count} blobs, ${human(t.done)}/${human(t.size)}\n`);
  };
  const onProgress = (e: ProgressEvent) => {
    if (mode === 'none') return;
    if (mode === 'json') {
      stream.write(JSON.stringify({ ...e, time: new Date().toISOString() }) + '\n');
      return;
    }
    if (e.type === 'message') {
      stream.write(e.text + '\n');
      return;
    }
    const b = blobs.get(e.digest) ?? { size: 'size' in e ? e.size : 0, done: 0, state: 'active' };
    if (e.type === 'blob-start') b.size = e.size;
    else if (e.type === 'blob-progress') b.done = e.done;
    else if (e.type === 'blob-done') {
      b.done = b.size = e.size;
      b.state = e.skipped ? (e.reason === 'exists' ? 'Already exists' : `Skipped (${e.reason ?? ''})`) : 'Done';
    }
    blobs.set(e.digest, b);
    if (mode === 'tty') {
      timer ??= setTimeout(() => {
        timer = undefined;
        draw();
      }, 100);
    } else plain();
  };
  const done = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    draw();
    plain(true);
  };
  return { onProgress, done };
}
