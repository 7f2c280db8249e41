/**
 * `.dockerignore` as docker and BuildKit read it (moby/patternmatcher): one pattern per line,
 * `#` comments, patterns cleaned (`./a/` → `a`, a leading `/` dropped), `*` and `?` within a path
 * segment, `**` across segments, `[...]` classes, `\` escapes, `!` re-includes; the last
 * matching pattern wins, and a pattern that matches a directory matches everything below it.
 * `<Dockerfile>.dockerignore` next to the Dockerfile wins over the context's `.dockerignore`.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { fromSystemError } from '../../errors.js';

interface Pattern {
  re: RegExp;
  exclusion: boolean;
  /** The pattern's directory depth, for checking parents. */
  text: string;
}

function toRegExp(p: string): RegExp {
  let re = '^';
  for (let i = 0; i < p.length; i++) {
    const ch = p[i]!;
    if (ch === '*') {
      if (p[i + 1] === '*') {
        i++;
        // `**/` matches zero or more directories; a trailing `**` everything.
        if (p[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (ch === '[') {
      const end = p.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = p.slice(i + 1, end);
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (ch === '\\' && i + 1 < p.length) {
      i++;
      re += p[i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/** Anything that can say whether a context-relative path is left out. */
export interface PathFilter {
  ignores(rel: string): boolean;
}

/** Paths left out when any of the filters leaves them out. */
export function anyOf(...filters: (PathFilter | undefined)[]): PathFilter | undefined {
  const fs = filters.filter((f): f is PathFilter => f !== undefined && !(f instanceof IgnoreMatcher && f.empty));
  if (fs.length <= 1) return fs[0];
  return { ignores: (rel) => fs.some((f) => f.ignores(rel)) };
}

export class IgnoreMatcher implements PathFilter {
  readonly patterns: Pattern[];

  constructor(lines: readonly string[]) {
    this.patterns = [];
    for (let raw of lines) {
      raw = raw.trim();
      if (raw === '' || raw.startsWith('#')) continue;
      let exclusion = false;
      if (raw.startsWith('!')) {
        exclusion = true;
        raw = raw.slice(1).trim();
      }
      let p = posix.normalize(raw).replace(/^\/+/, '').replace(/\/+$/, '');
      if (p === '.' || p === '') p = '';
      if (p === '' && !exclusion) continue;
      this.patterns.push({ re: toRegExp(p), exclusion, text: p });
    }
  }

  static parse(text: string): IgnoreMatcher {
    return new IgnoreMatcher(text.split(/\r?\n/));
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** Whether `rel` (context-relative, `/`-separated, no leading slash) is left out of the context. */
  ignores(rel: string): boolean {
    const parts = rel.split('/');
    let matched = false;
    for (const p of this.patterns) {
      if (p.exclusion === matched) {
        // Only a pattern that could flip the answer needs testing.
        let hit = p.re.test(rel);
        // A pattern that matches a parent directory matches its children.
        for (let n = 1; !hit && n < parts.length; n++) hit = p.re.test(parts.slice(0, n).join('/'));
        if (hit) matched = !p.exclusion;
      }
    }
    return matched;
  }

  /**
   * Whether anything below the directory `rel` could be re-included by an exclusion pattern
   * (then an ignored directory must still be walked).
   */
  mayReinclude(rel: string): boolean {
    return this.patterns.some((p) => p.exclusion && (p.text.startsWith(`${rel}/`) || p.text.includes('*') || p.text === rel));
  }
}

/** The ignore file for a build: `<Dockerfile>.dockerignore` when it exists, else `<context>/.dockerignore`. */
export async function loadIgnore(context: string, dockerfile: string | undefined): Promise<IgnoreMatcher> {
  const candidates = [];
  if (dockerfile) candidates.push(join(dirname(dockerfile), `${basename(dockerfile)}.dockerignore`));
  candidates.push(join(context, '.dockerignore'));
  for (const f of candidates) {
    try {
      return IgnoreMatcher.parse(await readFile(f, 'utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw fromSystemError(e, `reading ${f}`);
    }
  }
  return new IgnoreMatcher([]);
}
