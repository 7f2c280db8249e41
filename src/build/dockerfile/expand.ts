/**
 * BuildKit's variable expansion and word processing (its `shell.Lex`), for the instructions it
 * applies to (FROM, COPY, ADD, ENV, ARG, LABEL, EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL, the
 * flags of COPY/ADD/RUN): `$V`, `${V}`, `${V:-x}`, `${V-x}`, `${V:+x}`, `${V+x}`, `${V:?msg}`,
 * `${V?msg}`; quotes removed (`'...'` literal, `"..."` expanding, the escape token escaping `"`,
 * `$` and itself inside double quotes and anything outside quotes). RUN, CMD and ENTRYPOINT are
 * never expanded here: their shell does that.
 */
import { BerthError } from '../../errors.js';

/** Variables visible to an expansion: a name → value lookup (undefined when unset). */
export type Env = ReadonlyMap<string, string>;

/** What an expansion used: the names it looked up (for cache keys and "ARG used before declared"). */
export interface ExpandResult {
  value: string;
  /** Names referenced, set or not. */
  used: Set<string>;
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

class Lexer {
  pos = 0;
  readonly used = new Set<string>();
  constructor(
    readonly src: string,
    readonly env: Env,
    readonly escape: string,
    /** Quotes and escapes are plain characters (heredoc content): only `$` expands. */
    readonly raw = false,
  ) {}

  peek(): string | undefined {
    return this.src[this.pos];
  }

  next(): string | undefined {
    return this.src[this.pos++];
  }

  /**
   * Read until `stop` (not consumed) or the end; with `split`, unquoted whitespace ends a word
   * and the words are returned separately.
   */
  word(stop: string | undefined, split: boolean): string[] {
    const words: string[] = [];
    let cur = '';
    let inWord = false;
    for (;;) {
      const ch = this.peek();
      if (ch === undefined || (stop !== undefined && ch === stop)) break;
      if (split && /\s/.test(ch)) {
        this.pos++;
        if (inWord) words.push(cur);
        cur = '';
        inWord = false;
        continue;
      }
      inWord = true;
      if (this.raw && ch !== '$') {
        this.pos++;
        cur += ch;
      } else if (ch === "'") {
        this.pos++;
        cur += this.singleQuote();
      } else if (ch === '"') {
        this.pos++;
        cur += this.doubleQuote();
      } else if (ch === '$') {
        this.pos++;
        const v = this.dollar();
        if (split && !this.quotedDollar) {
          // An unquoted expansion splits into words, as a shell would.
          const parts = v.split(/\s+/);
          for (let i = 0; i < parts.length; i++) {
            if (i > 0) {
              if (cur !== '') words.push(cur);
              cur = '';
            }
            cur += parts[i];
          }
          if (v !== '' && /\s$/.test(v) && cur === '') inWord = false;
        } else cur += v;
      } else if (ch === this.escape) {
        this.pos++;
        const n = this.next();
        if (n === undefined) break;
        cur += n;
      } else {
        this.pos++;
        cur += ch;
      }
    }
    if (inWord || !split) words.push(cur);
    return words;
  }

  quotedDollar = false;

  singleQuote(): string {
    const end = this.src.indexOf("'", this.pos);
    if (end < 0) throw new Error('unexpected end of statement while looking for matching single-quote');
    const s = this.src.slice(this.pos, end);
    this.pos = end + 1;
    return s;
  }

  doubleQuote(): string {
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new Error('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.pos++;
        return out;
      }
      if (ch === '$') {
        this.pos++;
        this.quotedDollar = true;
        try {
          out += this.dollar();
        } finally {
          this.quotedDollar = false;
        }
        continue;
      }
      this.pos++;
      if (ch === this.escape) {
        const n = this.peek();
        if (n === undefined) continue;
        if (n === '"' || n === '$' || n === this.escape) {
          this.pos++;
          out += n;
          continue;
        }
      }
      out += ch;
    }
  }

  lookup(name: string): string | undefined {
    this.used.add(name);
    return this.env.get(name);
  }

  dollar(): string {
    const ch = this.peek();
    if (ch === '{') {
      this.pos++;
      const name = this.name();
      if (name === '') throw new Error('bad substitution: ${} needs a variable name');
      const c = this.next();
      if (c === '}') return this.lookup(name) ?? '';
      let op = c;
      let colon = false;
      if (c === ':') {
        colon = true;
        op = this.next();
      }
      if (op !== '-' && op !== '+' && op !== '?') {
        throw new Error(`unsupported modifier (${c}${colon ? op ?? '' : ''}) in substitution`);
      }
      const saved = this.quotedDollar;
      const word = this.word('}', false)[0] ?? '';
      this.quotedDollar = saved;
      if (this.next() !== '}') throw new Error(`missing '}' in substitution of ${name}`);
      const v = this.lookup(name);
      const set = colon ? v !== undefined && v !== '' : v !== undefined;
      if (op === '-') return set ? v! : word;
      if (op === '+') return set ? word : '';
      if (!set) throw new Error(`${name}: ${word || 'is not allowed to be unset'}`);
      return v!;
    }
    const name = this.name();
    if (name === '') return '$';
    return this.lookup(name) ?? '';
  }

  name(): string {
    const first = this.peek();
    if (first === undefined) return '';
    if (/[0-9]/.test(first)) {
      this.pos++;
      return first;
    }
    if (!NAME_START.test(first)) return '';
    let n = '';
    while (this.peek() !== undefined && NAME_CHAR.test(this.peek()!)) n += this.next();
    return n;
  }
}

function wrap(e: unknown, word: string): never {
  if (e instanceof BerthError) throw e;
  throw new BerthError('INVALID_ARGUMENT', `${(e as Error).message} in ${JSON.stringify(word)}`);
}

/** Expand one word (quotes removed, no splitting). */
export function expandWord(word: string, env: Env, escape = '\\'): ExpandResult {
  const lx = new Lexer(word, env, escape);
  try {
    return { value: lx.word(undefined, false)[0] ?? '', used: lx.used };
  } catch (e) {
    return wrap(e, word);
  }
}

/** Expand and split into words, as a shell splits (quoted whitespace stays in its word). */
export function expandWords(text: string, env: Env, escape = '\\'): { words: string[]; used: Set<string> } {
  const lx = new Lexer(text, env, escape);
  try {
    return { words: lx.word(undefined, true), used: lx.used };
  } catch (e) {
    return wrap(e, text);
  }
}

/** Expand `$` references in heredoc content; quotes and escapes stay as written. */
export function expandHeredoc(text: string, env: Env): string {
  const lx = new Lexer(text, env, '\\', true);
  try {
    return lx.word(undefined, false)[0] ?? '';
  } catch (e) {
    return wrap(e, text);
  }
}
