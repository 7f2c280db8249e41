/**
 * buildctl's progress on stderr into berth's BuildEvents, and its closing error text into one
 * BerthError. `--progress rawjson` (one SolveStatus JSON object per line: vertexes, statuses,
 * logs, warnings) is read from buildctl v0.13 on; older ones print `--progress plain`
 * (`#N name`, `#N 0.12 output`, `#N DONE 0.1s`, `#N CACHED`, `#N ERROR: ...`), read here too.
 * Whatever is not progress (buildctl's error report after the stream) is kept as the trailer.
 */
import { BerthError, type ErrorCode } from '../../errors.js';
import type { BuildEvent, BuildStep } from '../builder.js';

/** Lines of a failed step's output kept for the error report. */
export const TAIL_LINES = 10;

interface Vertex {
  step: BuildStep;
  started?: number;
  announced: boolean;
  finished: boolean;
  tail: string[];
  partial: string;
}

interface RawVertex {
  digest: string;
  name?: string;
  started?: string;
  completed?: string;
  cached?: boolean;
  error?: string;
}

interface RawLog {
  vertex: string;
  stream?: number;
  data?: string;
}

interface RawWarning {
  vertex?: string;
  short?: string;
  range?: { start?: { line?: number } }[];
}

/** `[stage 2/5] RUN ...` or `[2/5] RUN ...`: the step's position and count. */
function totalOf(name: string): number | undefined {
  const m = /^\[(?:[^\]]*\s)?(\d+)\/(\d+)\]/.exec(name);
  return m ? Number(m[2]) : undefined;
}

export class ProgressReader {
  readonly mode: 'rawjson' | 'plain';
  readonly trailer: string[] = [];
  readonly warnings: string[] = [];
  #vertices = new Map<string, Vertex>();
  #order: string[] = [];
  #emit: (e: BuildEvent) => void;
  /** Plain mode: the last step started (old buildctl prints some output as `#0`). */
  #current: string | undefined;
  #inTrailer = false;
  /**
   * A completed vertex whose step-done waits for the next event of another vertex: BuildKit often
   * completes a vertex and runs it again at once (a cache check, then the load), and the step is
   * reported done once, in its final state.
   */
  #pending: Vertex | undefined;

  constructor(mode: 'rawjson' | 'plain', emit: (e: BuildEvent) => void = () => {}) {
    this.mode = mode;
    this.#emit = emit;
  }

  /** One line of buildctl's stderr. */
  line(line: string): void {
    if (this.mode === 'rawjson') this.#rawLine(line);
    else this.#plainLine(line);
  }

  /** Every step seen, in the order they appeared. */
  steps(): BuildStep[] {
    return this.#order.map((id) => this.#vertices.get(id)!.step);
  }

  /** The step that failed, with its last output lines. */
  failedStep(): { step: BuildStep; tail: string[] } | undefined {
    for (const id of this.#order) {
      const v = this.#vertices.get(id)!;
      if (v.step.error !== undefined) return { step: v.step, tail: [...v.tail, ...(v.partial ? [v.partial] : [])] };
    }
    return undefined;
  }

  #vertex(id: string, name: string): Vertex {
    let v = this.#vertices.get(id);
    if (!v) {
      v = { step: { id, name, cached: false, durationMs: 0 }, announced: false, finished: false, tail: [], partial: '' };
      this.#vertices.set(id, v);
      this.#order.push(id);
    }
    return v;
  }

  #announce(v: Vertex): void {
    if (v.announced) return;
    v.announced = true;
    const total = totalOf(v.step.name);
    this.#emit({ type: 'step-start', step: { ...v.step }, ...(total !== undefined ? { total } : {}) });
  }

  #finish(v: Vertex): void {
    if (v.finished) return;
    this.#announce(v);
    v.finished = true;
    if (this.#pending && this.#pending !== v) this.#flush();
    this.#pending = v;
  }

  /** Report the completed vertex waiting to be reported. */
  #flush(): void {
    const v = this.#pending;
    this.#pending = undefined;
    if (v && v.finished) this.#emit({ type: 'step-done', step: { ...v.step } });
  }

  /** Any event of vertex `id` lets a different pending one be reported. */
  #touch(id: string): void {
    if (this.#pending && this.#pending.step.id !== id) this.#flush();
  }

  /** The end of buildctl's output: report what is still pending. */
  close(): void {
    this.#flush();
  }

  #log(v: Vertex, stream: 'stdout' | 'stderr', data: string): void {
    this.#touch(v.step.id);
    this.#announce(v);
    const text = v.partial + data;
    const parts = text.split('\n');
    v.partial = parts.pop() ?? '';
    for (const p of parts) {
      v.tail.push(p);
      if (v.tail.length > TAIL_LINES) v.tail.shift();
    }
    this.#emit({ type: 'step-log', id: v.step.id, stream, data });
  }

  #rawLine(line: string): void {
    if (!this.#inTrailer && line.startsWith('{')) {
      let doc: { vertexes?: RawVertex[]; logs?: RawLog[]; warnings?: RawWarning[] };
      try {
        doc = JSON.parse(line);
      } catch {
        this.#toTrailer(line);
        return;
      }
      for (const rv of doc.vertexes ?? []) this.#rawVertex(rv);
      for (const l of doc.logs ?? []) {
        const v = this.#vertices.get(l.vertex) ?? this.#vertex(l.vertex, l.vertex);
        this.#log(v, l.stream === 2 ? 'stderr' : 'stdout', Buffer.from(l.data ?? '', 'base64').toString('utf8'));
      }
      for (const w of doc.warnings ?? []) {
        const text = Buffer.from(w.short ?? '', 'base64').toString('utf8').trim();
        const line = w.range?.[0]?.start?.line;
        this.warnings.push(text);
        this.#emit({ type: 'warning', text, ...(line !== undefined ? { line } : {}) });
      }
      return;
    }
    this.#toTrailer(line);
  }

  #rawVertex(rv: RawVertex): void {
    if (typeof rv.digest !== 'string') return;
    this.#touch(rv.digest);
    const v = this.#vertex(rv.digest, rv.name ?? rv.digest);
    if (rv.name) v.step.name = rv.name;
    if (rv.started && !rv.completed) {
      // A vertex can run more than once (BuildKit restarts `load build definition`): a new start
      // after a completion opens the step again.
      if (v.finished) v.finished = false;
      v.started = Date.parse(rv.started);
      this.#announce(v);
      return;
    }
    if (rv.completed) {
      const started = rv.started ? Date.parse(rv.started) : v.started;
      v.step.cached = rv.cached === true;
      v.step.durationMs = v.step.cached || started === undefined ? 0 : Math.max(0, Date.parse(rv.completed) - started);
      if (rv.error) v.step.error = rv.error;
      v.finished = false;
      this.#finish(v);
    }
  }

  #toTrailer(line: string): void {
    if (!this.#inTrailer && line.trim() === '') return;
    if (!this.#inTrailer) this.#flush();
    this.#inTrailer = true;
    this.trailer.push(line);
  }

  #plainLine(line: string): void {
    const m = this.#inTrailer ? null : /^#(\d+) (.*)$/.exec(line);
    if (!m) {
      this.#toTrailer(line);
      return;
    }
    const id = `#${m[1]}`;
    const rest = m[2]!;
    if (id !== '#0') this.#touch(id);
    const known = this.#vertices.get(id);
    if (!known) {
      if (id === '#0' && this.#current) {
        const out = /^\d+\.\d+ (.*)$/.exec(rest);
        if (out) this.#log(this.#vertices.get(this.#current)!, 'stdout', out[1] + '\n');
        return;
      }
      const v = this.#vertex(id, rest);
      this.#current = id;
      this.#announce(v);
      return;
    }
    let r: RegExpExecArray | null;
    if ((r = /^DONE (\d+(?:\.\d+)?)s$/.exec(rest))) {
      known.step.durationMs = Math.round(Number(r[1]) * 1000);
      this.#finish(known);
    } else if (rest === 'CACHED') {
      known.step.cached = true;
      this.#finish(known);
    } else if ((r = /^ERROR: (.*)$/.exec(rest))) {
      known.step.error = r[1]!;
      this.#finish(known);
    } else if ((r = /^WARN: (.*)$/.exec(rest))) {
      const text = r[1]!;
      const ln = /\(line (\d+)\)\s*$/.exec(text);
      this.warnings.push(text);
      this.#emit({ type: 'warning', text, ...(ln ? { line: Number(ln[1]) } : {}) });
    } else if ((r = /^\d+\.\d+ (.*)$/.exec(rest))) {
      this.#log(known, 'stdout', r[1] + '\n');
    }
    // Other lines are statuses (`resolve ...`, `transferring ...`, `exporting ...`): not steps.
  }

  /**
   * The one error for a failed build: the step that failed (its Dockerfile line and instruction
   * from buildctl's report), or the report's last `error:` line.
   */
  failure(opts: { exitCode?: number | undefined; signal?: string | undefined; dockerfile?: string; addr?: string | undefined } = {}): BerthError {
    const report = this.trailer;
    const errLine = [...report].reverse().find((l) => l.startsWith('error: ')) ?? '';
    let msg = errLine.replace(/^error:\s*/, '').replace(/^failed to solve:\s*/, '').trim();
    // `Dockerfile:12` then `  12 | >>> RUN make`
    let where: string | undefined;
    let instruction: string | undefined;
    for (let i = 0; i < report.length; i++) {
      const l = report[i]!;
      const w = /^(\S+):(\d+)$/.exec(l);
      if (w && where === undefined) where = l;
      const ins = /^\s*\d+ \| >>> (.*)$/.exec(l);
      if (ins && instruction === undefined) instruction = ins[1]!.trim();
    }
    const failed = this.failedStep();
    if (instruction === undefined && failed) {
      const n = /^\[[^\]]*\]\s+(.*)$/.exec(failed.step.name);
      if (n) instruction = n[1];
    }
    if (!msg && failed?.step.error) msg = failed.step.error;
    if (!msg) {
      const last = report.filter((l) => l.trim()).pop();
      msg = last ?? (opts.signal ? `buildctl was killed by ${opts.signal}` : `buildctl exited with code ${opts.exitCode ?? '?'}`);
    }
    const parse = /dockerfile parse error(?: on line (\d+))?: (.*)$/i.exec(msg);
    if (parse) {
      const at = where ?? (parse[1] ? `${opts.dockerfile ?? 'Dockerfile'}:${parse[1]}` : opts.dockerfile ?? 'Dockerfile');
      return new BerthError('INVALID_ARGUMENT', `Dockerfile parse error at ${at}: ${parse[2]}`, { hint: 'fix the Dockerfile' });
    }
    const shortIns = instruction && instruction.length > 60 ? instruction.slice(0, 57) + '...' : instruction;
    const exit = /did not complete successfully: exit code: (\d+)/.exec(msg);
    const at = where ? ` at ${where}` : '';
    const ins = shortIns ? ` (${shortIns})` : '';
    if (exit) {
      return new BerthError('PROCESS', `build failed${at}${ins}: exit code ${exit[1]}`, { detail: failed?.tail ?? [] });
    }
    const code: ErrorCode = /\b(Unavailable|connection error|error reading from server|connection reset|transport is closing|EOF)\b/.test(msg)
      ? 'UNAVAILABLE'
      : /\bnot found\b/.test(msg)
        ? 'NOT_FOUND'
        : 'PROCESS';
    const tail = failed?.tail ?? [];
    if (code === 'UNAVAILABLE') {
      const daemon = `the BuildKit daemon${opts.addr ? ` at ${opts.addr}` : ''}`;
      if (/Error while dialing|failed to (list workers|get status)/.test(msg) && this.#order.length === 0) {
        return new BerthError('UNAVAILABLE', `${daemon} does not answer (${msg.replace(/^.*Error while dialing: /, '').replace(/"$/, '')})`, {
          hint: 'start buildkitd, or point BUILDKIT_HOST / --buildkit-addr at a running one',
        });
      }
      return new BerthError('UNAVAILABLE', `${daemon} went away during the build (${msg}); nothing was tagged`, { hint: 'check buildkitd and build again', detail: tail });
    }
    return new BerthError(code, `build failed${at}${ins}: ${cleanMessage(msg)}`, { detail: tail });
  }
}

/** BuildKit's internal ref ids (`failed to calculate checksum of ref x::y:`) say nothing to a user. */
function cleanMessage(msg: string): string {
  return msg.replace(/^failed to compute cache key: /, '').replace(/failed to calculate checksum of ref [^\s:]+::[^\s:]+: /, '');
}
