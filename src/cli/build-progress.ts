/**
 * Rendering of build progress on stderr, for both backends:
 * - plain: BuildKit-like `#N [stage i/n] ...` lines, each step's output as `#N 0.123 line`, then
 *   `#N DONE 0.4s` / `#N CACHED` / `#N ERROR: ...`;
 * - tty: the steps redrawn in place with timers, running steps showing their last output lines;
 * - json: one JSON object per event (schema in README.md, "Build"), with a `time` field;
 * - none: nothing.
 */
import type { BuildEvent } from '../index.js';
import type { ProgressMode } from './progress.js';

interface Shown {
  n: number;
  name: string;
  start: number;
  end?: number;
  cached: boolean;
  error?: string;
  tail: string[];
  partial: string;
}

const TTY_TAIL = 6;

export function createBuildProgress(mode: ProgressMode, stream: NodeJS.WritableStream & { columns?: number } = process.stderr) {
  const steps = new Map<string, Shown>();
  const begun = Date.now();
  const notes: string[] = [];
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const write = (s: string) => void stream.write(s);
  const secs = (ms: number) => (ms / 1000).toFixed(1);

  const plain = (e: BuildEvent) => {
    switch (e.type) {
      case 'message':
        write(`${e.text}\n`);
        return;
      case 'warning':
        write(`WARN: ${e.text}${e.line !== undefined && !/\(line \d+\)$/.test(e.text) ? ` (line ${e.line})` : ''}\n`);
        return;
      case 'step-start': {
        const s = steps.get(e.step.id);
        if (s) return;
        const n = steps.size + 1;
        steps.set(e.step.id, { n, name: e.step.name, start: Date.now(), cached: false, tail: [], partial: '' });
        write(`#${n} ${e.step.name}\n`);
        return;
      }
      case 'step-log': {
        const s = steps.get(e.id);
        if (!s) return;
        const text = s.partial + e.data;
        const lines = text.split('\n');
        s.partial = lines.pop() ?? '';
        const t = ((Date.now() - s.start) / 1000).toFixed(3);
        for (const l of lines) write(`#${s.n} ${t} ${l}\n`);
        return;
      }
      case 'step-done': {
        const s = steps.get(e.step.id);
        if (!s) return;
        if (s.partial) write(`#${s.n} ${((Date.now() - s.start) / 1000).toFixed(3)} ${s.partial}\n`);
        s.partial = '';
        if (e.step.error !== undefined) write(`#${s.n} ERROR: ${e.step.error}\n\n`);
        else if (e.step.cached) write(`#${s.n} CACHED\n\n`);
        else write(`#${s.n} DONE ${secs(e.step.durationMs)}s\n\n`);
        return;
      }
    }
  };

  const draw = () => {
    timer = undefined;
    const width = Math.max(40, (stream.columns ?? 100) - 1);
    const cut = (s: string) => (s.length > width ? s.slice(0, width - 1) + '…' : s);
    const now = Date.now();
    const all = [...steps.values()];
    const finished = all.filter((s) => s.end !== undefined).length;
    const lines = [`[+] Building ${secs(now - begun)}s (${finished}/${all.length})`, ...notes.map((n) => ` ${n}`)];
    for (const s of all) {
      const state = s.error !== undefined ? 'ERROR' : s.cached ? 'CACHED' : `${secs((s.end ?? now) - s.start)}s`;
      lines.push(cut(` => ${s.name} ${state}`));
      if (s.end === undefined || s.error !== undefined) for (const t of [...s.tail, ...(s.partial ? [s.partial] : [])].slice(-TTY_TAIL)) lines.push(cut(`    \x1b[2m${t}\x1b[0m`));
    }
    write((drawn > 0 ? `\x1b[${drawn}A` : '') + lines.map((l) => `\x1b[2K${l}\n`).join(''));
    drawn = lines.length;
  };
  const schedule = () => {
    timer ??= setTimeout(draw, 100);
  };
  const tty = (e: BuildEvent) => {
    switch (e.type) {
      case 'message':
        notes.push(e.text);
        break;
      case 'warning':
        notes.push(`WARN: ${e.text}`);
        break;
      case 'step-start':
        if (!steps.has(e.step.id)) steps.set(e.step.id, { n: steps.size + 1, name: e.step.name, start: Date.now(), cached: false, tail: [], partial: '' });
        break;
      case 'step-log': {
        const s = steps.get(e.id);
        if (!s) break;
        const lines = (s.partial + e.data).split('\n');
        s.partial = lines.pop() ?? '';
        s.tail.push(...lines);
        if (s.tail.length > TTY_TAIL) s.tail.splice(0, s.tail.length - TTY_TAIL);
        break;
      }
      case 'step-done': {
        const s = steps.get(e.step.id);
        if (!s) break;
        s.end = s.start + (e.step.cached ? 0 : e.step.durationMs);
        s.cached = e.step.cached;
        if (e.step.error !== undefined) s.error = e.step.error;
        break;
      }
    }
    schedule();
  };

  const onEvent = (e: BuildEvent) => {
    if (mode === 'none') return;
    if (mode === 'json') write(JSON.stringify({ ...e, time: new Date().toISOString() }) + '\n');
    else if (mode === 'plain') plain(e);
    else tty(e);
  };
  const done = () => {
    if (timer) clearTimeout(timer);
    if (mode === 'tty') draw();
  };
  return { onEvent, done };
}
