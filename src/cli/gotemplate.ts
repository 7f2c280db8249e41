/**
 * Docker's `--format`: a Go text/template subset, enough for what docker users write.
 *
 *   {{.Field}} {{.A.B}} {{.}} {{$}} {{$v}}          fields (a missing one is an error, as in Go)
 *   {{json .X}} {{upper .X}} {{lower .X}} {{title .X}} {{join .L ", "}} {{split .S ","}}
 *   {{println .X}} {{print .A .B}} {{printf "%s-%d" .A .B}} {{index .M "k"}} {{len .L}}
 *   {{truncate .S 5}} {{pad .S 1 1}} {{eq .A "x"}} ne lt le gt ge and or not
 *   {{if PIPELINE}}…{{else if …}}…{{else}}…{{end}}  {{range PIPELINE}}…{{else}}…{{end}}
 *   {{range $i, $e := PIPELINE}}…{{end}}  {{with PIPELINE}}…{{end}}  {{$x := PIPELINE}}
 *   pipelines `.X | lower`, parentheses, "strings", `raw strings`, numbers, true/false/nil,
 *   {{- and -}} trim the whitespace next to them.
 *
 * `renderRows` adds docker's conventions on top: a leading `table` prints a header row and
 * aligns `\t`-separated columns (docker's tabwriter: min width 10, padding 3); `json` prints
 * each row as one JSON line; the two-character sequences `\t` and `\n` in a format are a tab
 * and a newline.
 */
import { BerthError } from '../index.js';
import { columnHeader, tabulate } from './format.js';

type Value = unknown;
type Node =
  | { k: 'text'; text: string }
  | { k: 'action'; pipe: Pipe }
  | { k: 'if' | 'with'; pipe: Pipe; then: Node[]; else?: Node[] }
  | { k: 'range'; pipe: Pipe; vars: string[]; body: Node[]; else?: Node[] };
interface Pipe {
  decl?: string[];
  cmds: Expr[][];
}
type Expr =
  | { k: 'field'; base: 'dot' | string; path: string[] }
  | { k: 'lit'; v: Value }
  | { k: 'ident'; name: string }
  | { k: 'paren'; pipe: Pipe; path: string[] };

function fail(msg: string): never {
  throw new BerthError('INVALID_ARGUMENT', `invalid --format template: ${msg}`, { hint: 'see the Go text/template syntax docker uses, e.g. {{.ID}} or {{json .}}' });
}

// ---- lexing ----

interface Token {
  t: 'field' | 'var' | 'str' | 'num' | 'ident' | '(' | ')' | '|' | ':=' | '=' | ',';
  v: string;
}

function lexAction(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === '|' || c === ',') {
      out.push({ t: c, v: c });
      i++;
      continue;
    }
    if (c === ':' && src[i + 1] === '=') {
      out.push({ t: ':=', v: ':=' });
      i += 2;
      continue;
    }
    if (c === '=') {
      out.push({ t: '=', v: '=' });
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\') {
          const n = src[j + 1];
          s += n === 'n' ? '\n' : n === 't' ? '\t' : n === '\\' ? '\\' : n === '"' ? '"' : `\\${n}`;
          j += 2;
        } else s += src[j++];
      }
      if (j >= src.length) fail('unterminated string');
      out.push({ t: 'str', v: s });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j === -1) fail('unterminated raw string');
      out.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    const m = /^(\.[A-Za-z0-9_.]*|\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*|-?[0-9]+(?:\.[0-9]+)?|[A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(i));
    if (!m) fail(`unexpected ${JSON.stringify(c)} in {{${src}}}`);
    const w = m[1]!;
    out.push({ t: w.startsWith('.') ? 'field' : w.startsWith('$') ? 'var' : /^-?[0-9]/.test(w) ? 'num' : 'ident', v: w });
    i += w.length;
  }
  return out;
}

// ---- parsing ----

class Parser {
  pos = 0;
  constructor(readonly toks: Token[]) {}
  peek(): Token | undefined {
    return this.toks[this.pos];
  }
  pipe(): Pipe {
    const p: Pipe = { cmds: [] };
    // `$x := ...`, `$i, $e := ...`
    const save = this.pos;
    const vars: string[] = [];
    while (this.peek()?.t === 'var') {
      vars.push(this.toks[this.pos++]!.v);
      if (this.peek()?.t === ',') this.pos++;
      else break;
    }
    if (vars.length && (this.peek()?.t === ':=' || this.peek()?.t === '=')) {
      this.pos++;
      p.decl = vars;
    } else this.pos = save;
    let cmd: Expr[] = [];
    while (this.pos < this.toks.length && this.peek()!.t !== ')') {
      const t = this.toks[this.pos]!;
      if (t.t === '|') {
        if (!cmd.length) fail('empty command in pipeline');
        p.cmds.push(cmd);
        cmd = [];
        this.pos++;
        continue;
      }
      cmd.push(this.operand());
    }
    if (cmd.length) p.cmds.push(cmd);
    if (!p.cmds.length) fail('missing value');
    return p;
  }
  operand(): Expr {
    const t = this.toks[this.pos++]!;
    switch (t.t) {
      case 'field':
        return { k: 'field', base: 'dot', path: t.v === '.' ? [] : t.v.slice(1).split('.') };
      case 'var': {
        const [name, ...path] = t.v.split('.');
        return { k: 'field', base: name!, path };
      }
      case 'str':
        return { k: 'lit', v: t.v };
      case 'num':
        return { k: 'lit', v: Number(t.v) };
      case 'ident':
        if (t.v === 'true' || t.v === 'false') return { k: 'lit', v: t.v === 'true' };
        if (t.v === 'nil') return { k: 'lit', v: null };
        return { k: 'ident', name: t.v };
      case '(': {
        const pipe = this.pipe();
        if (this.toks[this.pos++]?.t !== ')') fail('missing )');
        // `(index .M "k").Field`
        let path: string[] = [];
        const nx = this.peek();
        if (nx?.t === 'field' && nx.v !== '.') {
          path = nx.v.slice(1).split('.');
          this.pos++;
        }
        return { k: 'paren', pipe, path };
      }
      default:
        fail(`unexpected ${t.v}`);
    }
  }
}

function parsePipe(src: string): Pipe {
  const p = new Parser(lexAction(src));
  const pipe = p.pipe();
  if (p.pos !== p.toks.length) fail(`unexpected ${p.toks[p.pos]!.v} in {{${src}}}`);
  return pipe;
}

/** Parse a template into a tree. */
export function parseTemplate(src: string): Node[] {
  const parts: ({ text: string } | { action: string })[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open === -1) {
      parts.push({ text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let a = open + 2;
    if (src.startsWith('- ', a) || (src[a] === '-' && /\s/.test(src[a + 1] ?? ''))) {
      text = text.replace(/\s+$/, '');
      a += 1;
    }
    const close = src.indexOf('}}', a);
    if (close === -1) fail('unclosed action {{');
    let body = src.slice(a, close);
    let next = close + 2;
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      const m = /^\s*/.exec(src.slice(next))!;
      next += m[0].length;
    }
    if (text) parts.push({ text });
    parts.push({ action: body.trim() });
    i = next;
  }
  let k = 0;
  /** A control node whose keyword and pipeline are in `a`; its body follows at k. */
  const control = (word: 'if' | 'with' | 'range', a: string): Node => {
    const pipe = parsePipe(a.slice(word.length));
    const body = block(['end', 'else']);
    let els: Node[] | undefined;
    if (body.end === 'else') els = block(['end']).nodes;
    else if (body.end.startsWith('else ')) {
      // `else if X` / `else with X`: a nested block that ends at our {{end}}.
      const rest = body.end.slice(5).trim();
      const w = /^[a-z]+/.exec(rest)?.[0];
      if (w !== 'if' && w !== 'with') fail(`unexpected {{${body.end}}}`);
      els = [control(w, rest)];
    }
    if (word === 'range') {
      const vars = pipe.decl ?? [];
      delete pipe.decl;
      return { k: 'range', pipe, vars, body: body.nodes, ...(els ? { else: els } : {}) };
    }
    return { k: word, pipe, then: body.nodes, ...(els ? { else: els } : {}) };
  };
  const block = (stop: string[]): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (k < parts.length) {
      const p = parts[k++]!;
      if ('text' in p) {
        nodes.push({ k: 'text', text: p.text });
        continue;
      }
      const a = p.action;
      if (a.startsWith('/*')) continue;
      const word = /^[a-z]+/.exec(a)?.[0] ?? '';
      if (word === 'end' || word === 'else') {
        if (!stop.includes(word)) fail(`unexpected {{${a}}}`);
        return { nodes, end: a };
      }
      if (word === 'if' || word === 'with' || word === 'range') {
        nodes.push(control(word, a));
        continue;
      }
      nodes.push({ k: 'action', pipe: parsePipe(a) });
    }
    if (stop.length) fail('missing {{end}}');
    return { nodes, end: '' };
  };
  return block([]).nodes;
}

// ---- evaluation ----

/** Go's default formatting of a value (`fmt.Print`). */
export function goString(v: Value): string {
  if (v === null || v === undefined) return '<no value>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === null ? '<nil>' : goString(x))).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    return `map[${keys.map((k) => `${k}:${(v as Record<string, Value>)[k] === null ? '<nil>' : goString((v as Record<string, Value>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

function truthy(v: Value): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function sprintf(fmt: string, args: Value[]): string {
  let i = 0;
  return fmt.replace(/%([-+ 0#]*)(\d*)(?:\.(\d+))?([svdqtfx%])/g, (_m, flags: string, width: string, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    let s: string;
    switch (verb) {
      case 'q':
        s = JSON.stringify(goString(a));
        break;
      case 'd':
        s = String(Math.trunc(Number(a)));
        break;
      case 'f':
        s = Number(a).toFixed(prec ? Number(prec) : 6);
        break;
      case 'x':
        s = typeof a === 'number' ? a.toString(16) : Buffer.from(goString(a)).toString('hex');
        break;
      default:
        s = goString(a);
        if (prec && verb === 's') s = s.slice(0, Number(prec));
    }
    const w = Number(width || 0);
    return flags.includes('-') ? s.padEnd(w) : s.padStart(w, flags.includes('0') && verb !== 's' ? '0' : ' ');
  });
}

function cmp(a: Value, b: Value): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}

type Fn = (...args: Value[]) => Value;
const FUNCS: Record<string, Fn> = {
  json: (v) => JSON.stringify(v === undefined ? null : v),
  upper: (s) => goString(s).toUpperCase(),
  lower: (s) => goString(s).toLowerCase(),
  title: (s) => goString(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  join: (l, sep) => (Array.isArray(l) ? l.map(goString).join(goString(sep)) : goString(l)),
  split: (s, sep) => goString(s).split(goString(sep)),
  print: (...a) => a.map(goString).join(''),
  println: (...a) => a.map(goString).join(' ') + '\n',
  printf: (f, ...a) => sprintf(goString(f), a),
  len: (v) => (typeof v === 'string' || Array.isArray(v) ? v.length : v && typeof v === 'object' ? Object.keys(v).length : fail('len of a value without length')),
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) {
      if (cur === null || cur === undefined) return undefined;
      cur = (cur as Record<string, Value>)[k as string];
    }
    return cur;
  },
  truncate: (s, n) => [...goString(s)].slice(0, Number(n)).join(''),
  pad: (s, l, r) => ' '.repeat(Number(l)) + goString(s) + ' '.repeat(Number(r)),
  eq: (a, ...bs) => bs.some((b) => cmp(a, b) === 0),
  ne: (a, b) => cmp(a, b) !== 0,
  lt: (a, b) => cmp(a, b) < 0,
  le: (a, b) => cmp(a, b) <= 0,
  gt: (a, b) => cmp(a, b) > 0,
  ge: (a, b) => cmp(a, b) >= 0,
  not: (a) => !truthy(a),
  and: (...a) => a.find((x) => !truthy(x)) ?? a[a.length - 1],
  or: (...a) => a.find((x) => truthy(x)) ?? a[a.length - 1],
};

interface Scope {
  dot: Value;
  vars: Map<string, Value>;
}

function fieldOf(v: Value, name: string, where: string): Value {
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'object') fail(`can't evaluate field ${name} in ${typeof v} (at ${where})`);
  if (v instanceof Map) return v.get(name);
  if (!(name in (v as object))) {
    // Go: a missing key of a map is <no value>; we cannot tell maps from structs, so accept it.
    return undefined;
  }
  const f = (v as Record<string, Value>)[name];
  return typeof f === 'function' ? (f as () => Value).call(v) : f;
}

function evalExpr(e: Expr, s: Scope, args: Value[] | undefined, piped: Value[]): Value {
  switch (e.k) {
    case 'lit':
      return e.v;
    case 'field': {
      let v: Value;
      if (e.base === 'dot') v = s.dot;
      else {
        if (!s.vars.has(e.base)) fail(`undefined variable ${e.base}`);
        v = s.vars.get(e.base);
      }
      for (const p of e.path) v = fieldOf(v, p, `.${e.path.join('.')}`);
      return v;
    }
    case 'paren': {
      let v = evalPipe(e.pipe, s);
      for (const p of e.path) v = fieldOf(v, p, `.${e.path.join('.')}`);
      return v;
    }
    case 'ident': {
      const f = FUNCS[e.name];
      if (!f) fail(`function ${JSON.stringify(e.name)} not defined`);
      return f(...(args ?? []), ...piped);
    }
  }
}

function evalPipe(p: Pipe, s: Scope): Value {
  let piped: Value[] = [];
  let v: Value;
  for (const cmd of p.cmds) {
    const [head, ...rest] = cmd;
    if (head!.k === 'ident') v = evalExpr(head!, s, rest.map((r) => evalExpr(r, s, undefined, [])), piped);
    else {
      if (rest.length) fail('only a function takes arguments');
      if (piped.length) fail('a value cannot take piped input');
      v = evalExpr(head!, s, undefined, []);
    }
    piped = [v];
  }
  if (p.decl) {
    s.vars.set(p.decl[0]!, v);
    return '';
  }
  return v;
}

function exec(nodes: Node[], s: Scope, out: string[]): void {
  for (const n of nodes) {
    switch (n.k) {
      case 'text':
        out.push(n.text);
        break;
      case 'action': {
        const v = evalPipe(n.pipe, s);
        if (!n.pipe.decl) out.push(v === undefined ? '<no value>' : v === null ? '<nil>' : goString(v));
        break;
      }
      case 'if':
      case 'with': {
        const v = evalPipe(n.pipe, s);
        if (truthy(v)) exec(n.then, n.k === 'with' ? { dot: v, vars: new Map(s.vars) } : s, out);
        else if (n.else) exec(n.else, s, out);
        break;
      }
      case 'range': {
        const v = evalPipe(n.pipe, s);
        const items: [Value, Value][] = Array.isArray(v)
          ? v.map((x, i) => [i, x])
          : v && typeof v === 'object'
            ? Object.keys(v).sort().map((k) => [k, (v as Record<string, Value>)[k]])
            : typeof v === 'number'
              ? Array.from({ length: v }, (_, i) => [i, i])
              : [];
        if (!items.length) {
          if (n.else) exec(n.else, s, out);
          break;
        }
        for (const [k, x] of items) {
          const vars = new Map(s.vars);
          if (n.vars.length === 1) vars.set(n.vars[0]!, x);
          if (n.vars.length === 2) {
            vars.set(n.vars[0]!, k);
            vars.set(n.vars[1]!, x);
          }
          exec(n.body, { dot: x, vars }, out);
        }
        break;
      }
    }
  }
}

/** A parsed template; `render(data)` gives the text. */
export class GoTemplate {
  readonly nodes: Node[];
  constructor(readonly source: string) {
    this.nodes = parseTemplate(source);
  }
  render(data: Value): string {
    const out: string[] = [];
    exec(this.nodes, { dot: data, vars: new Map([['$', data]]) }, out);
    return out.join('');
  }
}

export { tabulate } from './format.js';

/** Docker's escapes in a format string given on the command line. */
export function unescapeFormat(f: string): string {
  return f.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

/** How a command's rows render: header labels for `table`, the default table format. */
export interface FormatSpec {
  /** Header label of each field (`ID` -> `IMAGE ID`); fields not listed get their name upper-cased. */
  headers: Record<string, string>;
}

/**
 * Render `rows` with a docker `--format`: `json` (one JSON line per row), `table [TEMPLATE]`
 * (header + aligned columns), or a template applied to each row (one line each).
 */
export function renderRows(format: string, rows: readonly Value[], spec: FormatSpec, defaultTable: string): string {
  const f = unescapeFormat(format);
  if (f.trim() === 'json') return rows.map((r) => JSON.stringify(r)).join('\n');
  if (/^table(\s|$)/.test(f)) {
    const body = f.slice(5).trim() || defaultTable;
    const t = new GoTemplate(body);
    const header = new Proxy({}, { get: (_o, k) => (typeof k === 'string' ? columnHeader(k, spec.headers) : undefined), has: () => true });
    const lines = [t.render(header), ...rows.map((r) => t.render(r))];
    return tabulate(lines.join('\n'));
  }
  const t = new GoTemplate(f);
  return rows.map((r) => t.render(r)).join('\n');
}

/** Render one value (inspect): `json` gives it indented; anything else is a template. */
export function renderValue(format: string, value: Value): string {
  const f = unescapeFormat(format);
  if (f.trim() === 'json') return JSON.stringify(value);
  return new GoTemplate(f).render(value);
}
