/**
 * The Dockerfile parser, with BuildKit's (dockerfile.v0 frontend) semantics:
 *
 * - parser directives at the top (`# escape=`, `# syntax=`, `# check=`), until the first line that
 *   is not one; `syntax` names a frontend image that cannot be fetched here: it is ignored (with a
 *   warning) and this parser is used;
 * - logical lines: a trailing escape token (`\`, or the `escape` directive's) continues the line;
 *   comment lines and empty lines inside a continuation are dropped; continued lines keep their
 *   leading whitespace, the first line loses it;
 * - heredocs for RUN, COPY and ADD (`<<EOF`, `<<-EOF`, `<<"EOF"`, several per line);
 * - per instruction, BuildKit's argument shapes: JSON or shell form (RUN, CMD, ENTRYPOINT, SHELL,
 *   COPY, ADD, VOLUME, HEALTHCHECK CMD), `key=value` lists with the legacy `KEY value` form (ENV,
 *   LABEL), ARG lists, leading `--flags`, ONBUILD's inner instruction.
 *
 * Words keep their quotes here: expansion (expand.ts) happens when the instruction is dispatched,
 * with the stage's variables. Every error names the line: `Dockerfile:7: unknown instruction FROMM`.
 */
import { BerthError } from '../../errors.js';
import { expandWord } from './expand.js';

export interface Heredoc {
  /** The delimiter word, unquoted. */
  name: string;
  /** The lines between the marker and the delimiter, each with its newline, as written. */
  data: string;
  /** `<<-`: leading tabs are stripped from the content (and the delimiter line). */
  chomp: boolean;
  /** False when the delimiter was quoted: no expansion of the content. */
  expand: boolean;
}

/** One instruction as written (after joining continued lines). */
export interface Node {
  /** 1-based line of the instruction's first line, and of its last (heredocs included). */
  line: number;
  endLine: number;
  /** Upper case. */
  keyword: string;
  /** Leading `--name=value` / `--name` flags, raw. */
  flags: string[];
  /** The arguments after the keyword and flags, trimmed. */
  rest: string;
  /** The logical line after the keyword (flags included), as ONBUILD stores it. */
  afterKeyword: string;
  heredocs: Heredoc[];
}

export interface ParsedDockerfile {
  escape: string;
  directives: Record<string, string>;
  nodes: Node[];
  warnings: { line: number; text: string }[];
  /** The name the errors use (`Dockerfile`). */
  file: string;
}

export const INSTRUCTIONS = [
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
] as const;
const KNOWN = new Set<string>(INSTRUCTIONS);
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);
const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const HEREDOC_WORD = /^(\d*)<<(-?)([^<]*)$/;

/** An error about a line of the Dockerfile. */
export function lineError(file: string, line: number, message: string, hint?: string): BerthError {
  return new BerthError('INVALID_ARGUMENT', `${file}:${line}: ${message}`, hint ? { hint } : {});
}

function levenshtein(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length]!;
}

/** Split on whitespace outside quotes, keeping quotes and escapes in the words (BuildKit's parseWords). */
export function splitWords(rest: string, escape = '\\'): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote = '';
  let blankOk = false;
  for (let i = 0; i < rest.length; i++) {
    const ch = rest[i]!;
    if (quote) {
      if (ch === quote) quote = '';
      else if (ch === escape && quote !== "'" && i + 1 < rest.length) {
        word += ch;
        i++;
        word += rest[i]!;
        continue;
      }
      word += ch;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord && (blankOk || word !== '')) words.push(word);
      word = '';
      inWord = false;
      blankOk = false;
      continue;
    }
    inWord = true;
    if (ch === "'" || ch === '"') {
      quote = ch;
      blankOk = true;
    } else if (ch === escape) {
      if (i + 1 === rest.length) continue;
      word += ch;
      i++;
      word += rest[i]!;
      continue;
    }
    word += ch;
  }
  if (inWord && (blankOk || word !== '')) words.push(word);
  return words;
}

/** Split leading `--flag[=value]` words off an instruction's arguments. */
function splitFlags(text: string, escape: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let rest = text.trimStart();
  while (rest.startsWith('--')) {
    const words = splitWords(rest, escape);
    const w = words[0];
    if (w === undefined || w === '--') break;
    // The raw extent of the first word: advance past it in `rest`.
    let i = 0;
    let quote = '';
    for (; i < rest.length; i++) {
      const ch = rest[i]!;
      if (quote) {
        if (ch === quote) quote = '';
        else if (ch === escape && quote !== "'") i++;
      } else if (ch === '"' || ch === "'") quote = ch;
      else if (ch === escape) i++;
      else if (/\s/.test(ch)) break;
    }
    flags.push(rest.slice(0, i));
    rest = rest.slice(i).trimStart();
  }
  return { flags, rest: rest.trim() };
}

function parseHeredocWord(word: string): Omit<Heredoc, 'data'> | undefined {
  const m = HEREDOC_WORD.exec(word);
  if (!m || m[3] === '') return undefined;
  const rest = m[3]!;
  if (splitWords(rest).length !== 1) return undefined;
  const name = expandWord(rest, new Map()).value;
  if (name === '') return undefined;
  return { name, chomp: m[2] === '-', expand: !/['"]/.test(rest) };
}

/** Remove leading tabs from every line (`<<-`). */
export function chompHeredoc(data: string): string {
  return data.replace(/^\t+/gm, '');
}

/** Parse a Dockerfile's text into directives and nodes. Throws on unknown instructions and unterminated heredocs. */
export function parseDockerfile(text: string, file = 'Dockerfile'): ParsedDockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const directives: Record<string, string> = {};
  const warnings: { line: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (key !== 'escape' && key !== 'syntax' && key !== 'check') break;
    if (key in directives) throw lineError(file, i + 1, `only one ${key} parser directive can be used`);
    directives[key] = m[2]!;
  }
  const escape = directives.escape ?? '\\';
  if (escape !== '\\' && escape !== '`') throw lineError(file, 1, `invalid escape token '${escape}' does not match ` + '` or \\');
  if (directives.syntax !== undefined) {
    warnings.push({ line: 1, text: `syntax=${directives.syntax} is ignored: the built-in builder uses its own Dockerfile frontend` });
  }
  const esc = escape === '\\' ? '\\\\' : '`';
  const cont = new RegExp(`${esc}[ \\t]*$`);
  const isComment = (l: string) => /^\s*#/.test(l);

  const nodes: Node[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === '' || isComment(raw)) continue;
    const start = i;
    let line = raw.trimStart();
    let more = cont.test(line);
    if (more) line = line.replace(cont, '');
    while (more && i + 1 < lines.length) {
      i++;
      const l = lines[i]!;
      if (isComment(l)) continue;
      if (l.trim() === '') {
        warnings.push({ line: i + 1, text: 'empty continuation line' });
        continue;
      }
      more = cont.test(l);
      line += more ? l.replace(cont, '') : l;
    }
    const m = /^(\S+)\s*([\s\S]*)$/.exec(line.trim());
    if (!m) continue;
    const keyword = m[1]!.toUpperCase();
    if (!KNOWN.has(keyword)) {
      const near = INSTRUCTIONS.find((k) => levenshtein(k, keyword) <= 2 && Math.abs(k.length - keyword.length) <= 1);
      throw lineError(file, start + 1, `unknown instruction ${m[1]}${near ? ` (did you mean ${near}?)` : ''}`);
    }
    const afterKeyword = m[2]!.trim();
    const { flags, rest } = splitFlags(afterKeyword, escape);
    const heredocs: Heredoc[] = [];
    if (HEREDOC_KEYWORDS.has(keyword)) {
      for (const w of splitWords(rest, escape)) {
        const h = parseHeredocWord(w);
        if (!h) continue;
        let data = '';
        let done = false;
        while (i + 1 < lines.length) {
          i++;
          const l = lines[i]!;
          if ((h.chomp ? l.replace(/^\t+/, '') : l) === h.name) {
            done = true;
            break;
          }
          data += `${l}\n`;
        }
        if (!done) throw lineError(file, start + 1, `unterminated heredoc ${h.name}`, `end it with a line holding only ${h.name}`);
        heredocs.push({ ...h, data });
      }
    }
    nodes.push({ line: start + 1, endLine: i + 1, keyword, flags, rest, afterKeyword, heredocs });
  }
  return { escape, directives, nodes, warnings, file };
}

/** Parse the arguments of ONBUILD as an instruction of their own. */
export function parseOnbuildExpression(expr: string, line: number, file: string, escape: string): Node {
  const inner = parseDockerfile(`${escape === '`' ? '# escape=`\n' : ''}${expr}`, file);
  const n = inner.nodes[0];
  if (!n || inner.nodes.length !== 1) throw lineError(file, line, `ONBUILD needs one instruction`);
  return { ...n, line, endLine: line };
}
