/**
 * Typed instructions from parsed nodes, and the stages they form. Values stay unexpanded (the
 * words as written, quotes included): the builder expands them with the stage's variables.
 */
import { lineError, parseOnbuildExpression, splitWords, type Heredoc, type Node, type ParsedDockerfile } from './parse.js';

export interface KeyValue {
  key: string;
  value: string;
}

export interface ArgDecl {
  key: string;
  /** Unexpanded default, when the ARG has one. */
  value?: string;
}

interface Base {
  line: number;
  endLine: number;
  /** Flags by name (`--mount` may repeat). */
  flags: Map<string, string[]>;
}

export type Instruction =
  | (Base & { kind: 'FROM'; image: string; name?: string; platform?: string })
  | (Base & { kind: 'ARG'; args: ArgDecl[] })
  | (Base & { kind: 'ENV' | 'LABEL'; pairs: KeyValue[] })
  | (Base & { kind: 'RUN' | 'CMD' | 'ENTRYPOINT'; shell: boolean; cmd: string[]; heredocs: Heredoc[] })
  | (Base & { kind: 'SHELL'; cmd: string[] })
  | (Base & { kind: 'COPY' | 'ADD'; srcs: string[]; dest: string; heredocs: Heredoc[] })
  | (Base & { kind: 'WORKDIR' | 'USER' | 'STOPSIGNAL' | 'MAINTAINER'; value: string })
  | (Base & { kind: 'EXPOSE' | 'VOLUME'; values: string[] })
  | (Base & { kind: 'HEALTHCHECK'; none: boolean; shell: boolean; cmd: string[] })
  | (Base & { kind: 'ONBUILD'; expression: string; inner: Instruction });

export type InstructionKind = Instruction['kind'];

export interface Stage {
  index: number;
  /** Lower-cased `AS` name. */
  name?: string;
  from: Instruction & { kind: 'FROM' };
  instructions: Instruction[];
}

export interface Dockerfile {
  file: string;
  escape: string;
  /** ARGs before the first FROM. */
  metaArgs: (Instruction & { kind: 'ARG' })[];
  stages: Stage[];
  warnings: { line: number; text: string }[];
}

/** Which flags each instruction takes; a value of true means the flag may repeat. */
const FLAGS: Record<string, Record<string, boolean>> = {
  FROM: { platform: false },
  RUN: { mount: true, network: false, security: false },
  COPY: { from: false, chown: false, chmod: false, link: false, parents: false, exclude: true },
  ADD: { chown: false, chmod: false, link: false, checksum: false, 'keep-git-dir': false, exclude: true, unpack: false },
  HEALTHCHECK: { interval: false, timeout: false, 'start-period': false, 'start-interval': false, retries: false },
};

function parseFlags(n: Node, file: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const allowed = FLAGS[n.keyword] ?? {};
  for (const f of n.flags) {
    const m = /^--([^=]+)(?:=([\s\S]*))?$/.exec(f);
    if (!m) throw lineError(file, n.line, `${n.keyword}: bad flag ${f}`);
    const name = m[1]!;
    if (!(name in allowed)) throw lineError(file, n.line, `${n.keyword}: unknown flag: --${name}`);
    const list = out.get(name) ?? [];
    if (list.length > 0 && !allowed[name]) throw lineError(file, n.line, `${n.keyword}: --${name} given twice`);
    list.push(m[2] ?? 'true');
    out.set(name, list);
  }
  return out;
}

/** `["a", "b"]` → strings, else undefined (shell form). */
function jsonArray(rest: string): string[] | undefined {
  if (!rest.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(rest) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* shell form */
  }
  return undefined;
}

function maybeJsonToList(rest: string): string[] {
  return jsonArray(rest) ?? rest.split(/\s+/).filter((w) => w !== '');
}

function nameVal(n: Node, file: string, escape: string): KeyValue[] {
  const words = splitWords(n.rest, escape);
  if (words.length === 0) throw lineError(file, n.line, `${n.keyword} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    // Legacy form: KEY value with spaces
    const m = /^(\S+)\s+([\s\S]*)$/.exec(n.rest);
    if (!m || m[2]!.trim() === '') throw lineError(file, n.line, `${n.keyword} must have two arguments`);
    return [{ key: m[1]!, value: m[2]!.trim() }];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i < 0) throw lineError(file, n.line, `Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    if (i === 0) throw lineError(file, n.line, `${n.keyword} names can not be blank`);
    return { key: w.slice(0, i), value: w.slice(i + 1) };
  });
}

/** One node → its typed instruction. */
export function toInstruction(n: Node, file: string, escape: string): Instruction {
  const base = { line: n.line, endLine: n.endLine, flags: parseFlags(n, file) };
  const need = (min: number, what: string) => {
    if (n.rest === '' && min > 0) throw lineError(file, n.line, `${n.keyword} requires ${what}`);
  };
  switch (n.keyword) {
    case 'FROM': {
      const w = n.rest.split(/\s+/).filter((x) => x !== '');
      if (w.length !== 1 && !(w.length === 3 && w[1]!.toUpperCase() === 'AS')) {
        throw lineError(file, n.line, 'FROM requires either one or three arguments', 'FROM image [AS name]');
      }
      const name = w[2]?.toLowerCase();
      if (name !== undefined && !/^[a-z][a-z0-9-_.]*$/.test(name)) throw lineError(file, n.line, `invalid name for build stage: "${w[2]}", name can't start with a number or contain symbols`);
      const platform = base.flags.get('platform')?.[0];
      return { ...base, kind: 'FROM', image: w[0]!, ...(name ? { name } : {}), ...(platform ? { platform } : {}) };
    }
    case 'ARG': {
      need(1, 'at least one argument');
      const args = splitWords(n.rest, escape).map((w) => {
        const i = w.indexOf('=');
        return i < 0 ? { key: w } : { key: w.slice(0, i), value: w.slice(i + 1) };
      });
      return { ...base, kind: 'ARG', args };
    }
    case 'ENV':
    case 'LABEL':
      return { ...base, kind: n.keyword, pairs: nameVal(n, file, escape) };
    case 'RUN':
    case 'CMD':
    case 'ENTRYPOINT': {
      if (n.keyword === 'RUN') need(1, 'at least one argument');
      const json = jsonArray(n.rest);
      return { ...base, kind: n.keyword, shell: json === undefined, cmd: json ?? [n.rest], heredocs: n.heredocs };
    }
    case 'SHELL': {
      const json = jsonArray(n.rest);
      if (!json || json.length === 0) throw lineError(file, n.line, 'SHELL requires the arguments to be in JSON form');
      return { ...base, kind: 'SHELL', cmd: json };
    }
    case 'COPY':
    case 'ADD': {
      const list = maybeJsonToList(n.rest);
      if (list.length < 2) throw lineError(file, n.line, `${n.keyword} requires at least two arguments, but only one was provided. Destination could not be determined`);
      return { ...base, kind: n.keyword, srcs: list.slice(0, -1), dest: list[list.length - 1]!, heredocs: n.heredocs };
    }
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
    case 'MAINTAINER':
      need(1, 'exactly one argument');
      return { ...base, kind: n.keyword, value: n.rest };
    case 'EXPOSE':
      need(1, 'at least one argument');
      return { ...base, kind: 'EXPOSE', values: n.rest.split(/\s+/) };
    case 'VOLUME': {
      need(1, 'at least one argument');
      const values = maybeJsonToList(n.rest);
      if (values.some((v) => v.trim() === '')) throw lineError(file, n.line, 'VOLUME specified can not be an empty string');
      return { ...base, kind: 'VOLUME', values };
    }
    case 'HEALTHCHECK': {
      const m = /^(\S+)\s*([\s\S]*)$/.exec(n.rest);
      const sub = m?.[1]?.toUpperCase();
      if (sub === 'NONE') {
        if (m![2]!.trim() !== '' || n.flags.length > 0) throw lineError(file, n.line, "HEALTHCHECK NONE takes no arguments");
        return { ...base, kind: 'HEALTHCHECK', none: true, shell: false, cmd: [] };
      }
      if (sub !== 'CMD' || m![2]!.trim() === '') throw lineError(file, n.line, 'HEALTHCHECK requires CMD or NONE', 'HEALTHCHECK [--interval=...] CMD command');
      const rest = m![2]!.trim();
      const json = jsonArray(rest);
      return { ...base, kind: 'HEALTHCHECK', none: false, shell: json === undefined, cmd: json ?? [rest] };
    }
    case 'ONBUILD': {
      need(1, 'at least one argument');
      const inner = parseOnbuildExpression(n.afterKeyword, n.line, file, escape);
      if (inner.keyword === 'ONBUILD') throw lineError(file, n.line, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (inner.keyword === 'FROM' || inner.keyword === 'MAINTAINER') throw lineError(file, n.line, `${inner.keyword} isn't allowed as an ONBUILD trigger`);
      return { ...base, kind: 'ONBUILD', expression: n.afterKeyword, inner: toInstruction(inner, file, escape) };
    }
    default:
      throw lineError(file, n.line, `unknown instruction ${n.keyword}`);
  }
}

/** Typed instructions grouped into stages. */
export function toStages(p: ParsedDockerfile): Dockerfile {
  const metaArgs: (Instruction & { kind: 'ARG' })[] = [];
  const stages: Stage[] = [];
  for (const n of p.nodes) {
    const ins = toInstruction(n, p.file, p.escape);
    if (ins.kind === 'FROM') {
      if (ins.name !== undefined && stages.some((s) => s.name === ins.name)) throw lineError(p.file, n.line, `duplicate stage name "${ins.name}"`);
      stages.push({ index: stages.length, ...(ins.name !== undefined ? { name: ins.name } : {}), from: ins, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.kind !== 'ARG') throw lineError(p.file, n.line, `${ins.kind} before the first FROM`, 'only ARG may come before FROM');
      metaArgs.push(ins);
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  if (stages.length === 0) throw lineError(p.file, 1, 'the Dockerfile has no FROM', 'start it with FROM image');
  return { file: p.file, escape: p.escape, metaArgs, stages, warnings: p.warnings };
}
