/**
 * Dockerfile instructions accepted by `import --change` (docker's set): CMD, ENTRYPOINT, ENV,
 * EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL, ONBUILD. Pure: config in, config out.
 */
import { posix } from 'node:path';
import { BerthError } from '../errors.js';
import type { ContainerConfig } from '../oci/types.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends readonly (infer U)[] | null | undefined ? U[] | Exclude<T[K], readonly unknown[]> : T[K] };

function bad(change: string, why: string): BerthError {
  return new BerthError('INVALID_ARGUMENT', `--change ${JSON.stringify(change)}: ${why}`, {
    hint: 'use a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL or ONBUILD',
  });
}

/** Split shell-like words, honouring "double" and 'single' quotes and backslash escapes. */
export function splitWords(s: string, change = s): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < s.length && (s[i + 1] === '"' || s[i + 1] === '\\')) cur += s[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw bad(change, `unterminated ${quote} quote`);
  if (inWord) words.push(cur);
  return words;
}

/** `["a","b"]` (exec form) or a shell command (`/bin/sh -c ...`). */
function commandForm(rest: string, change: string): string[] {
  const t = rest.trim();
  if (t.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(t);
    } catch {
      v = undefined;
    }
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    if (t.endsWith(']')) throw bad(change, 'exec form must be a JSON array of strings');
  }
  if (t.length === 0) throw bad(change, 'missing command');
  return ['/bin/sh', '-c', t];
}

function keyValues(rest: string, change: string, legacy: boolean): [string, string][] {
  const words = splitWords(rest, change);
  if (words.length === 0) throw bad(change, 'missing KEY=VALUE');
  if (legacy && !words[0]!.includes('=')) {
    // ENV KEY value with spaces
    const m = /^\s*(\S+)\s+([\s\S]*)$/.exec(rest);
    if (!m) throw bad(change, 'ENV needs KEY=VALUE or KEY VALUE');
    return [[m[1]!, m[2]!.trim()]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw bad(change, `${JSON.stringify(w)} is not KEY=VALUE`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

/** Apply `changes` (in order) to a container config. */
export function applyChanges(base: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const c = structuredClone(base) as Mutable<ContainerConfig> & Record<string, unknown>;
  for (const change of changes) {
    const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(change);
    if (!m) throw bad(change, 'not a Dockerfile instruction');
    const instr = m[1]!.toUpperCase();
    const rest = (m[2] ?? '').trim();
    switch (instr) {
      case 'CMD':
        c.Cmd = commandForm(rest, change);
        break;
      case 'ENTRYPOINT':
        c.Entrypoint = commandForm(rest, change);
        break;
      case 'ENV': {
        const env = [...(c.Env ?? [])];
        for (const [k, v] of keyValues(rest, change, true)) {
          const i = env.findIndex((e) => e.split('=')[0] === k);
          if (i === -1) env.push(`${k}=${v}`);
          else env[i] = `${k}=${v}`;
        }
        c.Env = env;
        break;
      }
      case 'LABEL': {
        const labels: Record<string, string> = { ...(c.Labels ?? {}) };
        for (const [k, v] of keyValues(rest, change, false)) labels[k] = v;
        c.Labels = labels;
        break;
      }
      case 'EXPOSE': {
        const ports: Record<string, object> = { ...(c.ExposedPorts ?? {}) };
        const words = splitWords(rest, change);
        if (words.length === 0) throw bad(change, 'missing port');
        for (const w of words) {
          const pm = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
          if (!pm) throw bad(change, `invalid port ${JSON.stringify(w)} (use PORT[/tcp|udp|sctp])`);
          const lo = Number(pm[1]);
          const hi = pm[2] ? Number(pm[2]) : lo;
          if (lo < 1 || hi > 65535 || hi < lo) throw bad(change, `port out of range in ${JSON.stringify(w)}`);
          if (hi - lo > 10000) throw bad(change, `port range ${JSON.stringify(w)} is too large`);
          const proto = (pm[3] ?? 'tcp').toLowerCase();
          for (let p = lo; p <= hi; p++) ports[`${p}/${proto}`] = {};
        }
        c.ExposedPorts = ports;
        break;
      }
      case 'USER':
        if (!rest) throw bad(change, 'missing user');
        c.User = rest;
        break;
      case 'WORKDIR': {
        if (!rest) throw bad(change, 'missing directory');
        const dir = splitWords(rest, change).join(' ');
        c.WorkingDir = posix.isAbsolute(dir) ? posix.normalize(dir) : posix.join(c.WorkingDir || '/', dir);
        break;
      }
      case 'VOLUME': {
        const vols: Record<string, object> = { ...(c.Volumes ?? {}) };
        let list: string[];
        try {
          const v = rest.startsWith('[') ? (JSON.parse(rest) as unknown) : undefined;
          list = Array.isArray(v) ? (v as unknown[]).map(String) : splitWords(rest, change);
        } catch {
          list = splitWords(rest, change);
        }
        if (list.length === 0) throw bad(change, 'missing volume path');
        for (const v of list) vols[v] = {};
        c.Volumes = vols;
        break;
      }
      case 'STOPSIGNAL':
        if (!rest) throw bad(change, 'missing signal');
        c.StopSignal = rest;
        break;
      case 'ONBUILD':
        if (!rest) throw bad(change, 'missing instruction');
        c.OnBuild = [...(c.OnBuild ?? []), rest];
        break;
      default:
        throw bad(change, `${instr} is not supported by --change`);
    }
  }
  return c as ContainerConfig;
}
