import { size } from './format.js';
import type { ProgressEvent } from '../index.js';

export type ProgressMode = 'tty' | 'plain' | 'json' | 'none';

export function pickMode(requested: string | undefined, stream: NodeJS.WriteStream = process.stderr): ProgressMode {
  if (requested === 'json' || requested === 'plain' || requested === 'none' || requested === 'tty') return requested;
  return stream.isTTY ? 'tty' : 'plain';
}

export { size as humanSize };

/**
 * Render progress events on stderr: bars on a TTY; in plain mode (also when stderr is not a
 * terminal) a first line at the first event, a line every 2 s while the totals change, and a final
 * line from `done()` ending in `, done` (never the same line twice; no final line after a
 * failure: `done(false)`); NDJSON with --progress json (the events as the library reports them,
 * plus `time`). Never writes to stdout.
 */
export function createProgress(mode: ProgressMode, label = '', stream: NodeJS.WriteStream = process.stderr) {
  const blobs = new Map<string, { size: number; done: number; state: string }>();
  let lastPlain = 0;
  let lastLine = '';
  let drawn = 0;
  let finished = false;
  let planned = { blobs: 0, size: 0 };
  let timer: NodeJS.Timeout | undefined;
  const totals = () => {
    let size = 0;
    let done = 0;
    let finished = 0;
    let unknown = false;
    for (const b of blobs.values()) {
      if (b.size <= 0 && b.state === 'active') unknown = true;
      size += Math.max(b.size, 0);
      done += b.done;
      if (b.state !== 'active') finished++;
    }
    return { size: Math.max(size, planned.size), done, finished, count: Math.max(blobs.size, planned.blobs), unknown };
  };
  const draw = () => {
    if (mode !== 'tty') return;
    const lines: string[] = [];
    for (const [d, b] of blobs) {
      const w = 30;
      const name = d.startsWith('sha256:') ? d.slice(7, 19) : d;
      if (b.state !== 'active') lines.push(`${name}: ${b.state}`);
      else if (b.size <= 0) lines.push(`${name}: ${size(b.done)}`);
      else {
        const frac = Math.min(1, b.done / b.size);
        lines.push(`${name}: [${'='.repeat(Math.round(frac * w)).padEnd(w, ' ')}] ${size(b.done)}/${size(b.size)}`);
      }
    }
    const shown = lines.slice(-12);
    stream.write((drawn > 0 ? `\x1b[${drawn}A` : '') + shown.map((l) => `\x1b[2K${l}\n`).join(''));
    drawn = shown.length;
  };
  const plainLine = (final: boolean) => {
    const t = totals();
    if (t.count === 0) return '';
    const bytes = t.unknown ? size(t.done) : `${size(t.done)}/${size(t.size)}`;
    return `${label ? label + ': ' : ''}${t.finished}/${t.count} blobs, ${bytes}${final ? ', done' : ''}`;
  };
  const plain = (force: boolean, final = false) => {
    if (mode !== 'plain') return;
    const now = Date.now();
    if (!force && lastPlain !== 0 && now - lastPlain < 2000) return;
    const line = plainLine(final);
    if (!line || line === lastLine) return;
    lastPlain = now;
    lastLine = line;
    stream.write(line + '\n');
  };
  const onProgress = (e: ProgressEvent) => {
    if (mode === 'none' || finished) return;
    if (mode === 'json') {
      stream.write(JSON.stringify({ ...e, time: new Date().toISOString() }) + '\n');
      return;
    }
    if (e.type === 'message') {
      stream.write(e.text + '\n');
      return;
    }
    if (e.type === 'plan') {
      planned = { blobs: planned.blobs + e.blobs, size: planned.size + e.size };
      return;
    }
    const b = blobs.get(e.digest) ?? { size: 'size' in e ? e.size : 0, done: 0, state: 'active' };
    if (e.type === 'blob-start') b.size = e.size;
    else if (e.type === 'blob-progress') {
      b.done = e.done;
      if (e.size > 0) b.size = e.size;
    } else if (e.type === 'blob-done') {
      b.done = b.size = e.size;
      b.state = e.skipped ? (e.reason === 'exists' ? 'Already exists' : `Skipped (${e.reason ?? ''})`) : 'Done';
    }
    blobs.set(e.digest, b);
    if (mode === 'tty') {
      timer ??= setTimeout(() => {
        timer = undefined;
        draw();
      }, 100);
    } else plain(false);
  };
  /** The end: the final state (`ok`), or nothing more after a failure (the error line follows). */
  const done = (ok = true) => {
    if (finished) return;
    finished = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!ok) return;
    draw();
    plain(true, true);
  };
  return { onProgress, done };
}
