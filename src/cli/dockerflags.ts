/**
 * docker-style flag tables for verbs whose trailing arguments belong to someone else (`run`
 * IMAGE COMMAND..., `exec` CONTAINER COMMAND...). One table per verb generates both the yargs
 * options (what `--help` shows) and the docker-style parse: flags (`-it` groups, `--x=v`,
 * `-e v`, `-ev`, `--no-x`) are read until the verb's positionals were seen; everything after is
 * passed through verbatim, global flags and `--` included.
 */
import type { Argv } from 'yargs';
import { BerthError } from '../index.js';

export interface DockerFlag {
  name: string;
  /** One-letter short form. */
  alias?: string;
  type: 'boolean' | 'string';
  /** May be given more than once; the values are collected in order. */
  repeatable?: boolean;
  description: string;
  /** Accepted but not listed in --help (docker's old spellings). */
  hidden?: boolean;
  /** The value to store under (a hidden alias of another flag). */
  as?: string;
}

/** berth's global flags, accepted between the verb and its positionals too. */
export const GLOBAL_FLAGS: readonly DockerFlag[] = [
  { name: 'root', type: 'string', description: '' },
  { name: 'debug', type: 'boolean', description: '' },
  { name: 'progress', type: 'string', description: '' },
  { name: 'help', alias: 'h', type: 'boolean', description: '' },
];

export interface ParsedArgs {
  /** Values by flag name (repeatable ones as arrays). */
  flags: Record<string, unknown>;
  positionals: string[];
  /** How many of the given arguments were berth's (flags and positionals). */
  consumed: number;
  /** The rest, verbatim. */
  rest: string[];
}

/**
 * Parse the arguments after the verb: flags until `npos` positionals were seen, then stop. A
 * `--` ends the flags early (the missing positionals follow it).
 */
export function parseDockerArgs(args: readonly string[], table: readonly DockerFlag[], npos: number, verb: string): ParsedArgs {
  const all = [...table, ...GLOBAL_FLAGS];
  const flags: Record<string, unknown> = {};
  const positionals: string[] = [];
  const hint = `see berth ${verb} --help`;
  let i = 0;
  const set = (s: DockerFlag, v: string | boolean) => {
    const key = s.as ?? s.name;
    if (s.repeatable) ((flags[key] ??= []) as unknown[]).push(v);
    else flags[key] = v;
  };
  const value = (s: DockerFlag, inline: string | undefined): string => {
    if (inline !== undefined) return inline;
    const v = args[++i];
    if (v === undefined) throw new BerthError('INVALID_ARGUMENT', `flag needs an argument: --${s.name}`, { hint });
    return v;
  };
  for (; i < args.length && positionals.length < npos; i++) {
    const a = args[i]!;
    if (a === '--') {
      // the end of flags: the positionals still missing follow it
      for (i++; i < args.length && positionals.length < npos; i++) positionals.push(args[i]!);
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      const inline = eq === -1 ? undefined : a.slice(eq + 1);
      const neg = name.startsWith('no-') ? all.find((s) => s.name === name.slice(3) && s.type === 'boolean') : undefined;
      const s = all.find((x) => x.name === name) ?? neg;
      if (!s) throw new BerthError('INVALID_ARGUMENT', `unknown flag: --${name}`, { hint });
      if (s.type === 'boolean') set(s, neg ? false : inline === undefined ? true : !/^(false|0|no)$/i.test(inline));
      else set(s, value(s, inline));
    } else if (a.startsWith('-') && a.length > 1) {
      for (let k = 1; k < a.length; k++) {
        const ch = a[k]!;
        const s = all.find((x) => x.alias === ch);
        if (!s) throw new BerthError('INVALID_ARGUMENT', `unknown shorthand flag: '${ch}' in ${a}`, { hint });
        if (s.type === 'boolean') set(s, true);
        else {
          const rest = a.slice(k + 1).replace(/^=/, '');
          set(s, value(s, rest === '' ? undefined : rest));
          break;
        }
      }
    } else positionals.push(a);
  }
  return { flags, positionals, consumed: i, rest: args.slice(i) };
}

/**
 * The table as yargs options, for `--help` only (the values come from parseDockerArgs).
 * Repeatable flags are single strings to yargs, so a value never swallows the positional after it.
 */
export function yargsOptions<T>(y: Argv<T>, table: readonly DockerFlag[]): Argv<T> {
  let out = y;
  for (const f of table) {
    out = out.option(f.name, {
      type: f.type,
      describe: f.description + (f.repeatable ? ' (repeatable)' : ''),
      ...(f.alias ? { alias: f.alias } : {}),
      ...(f.hidden ? { hidden: true } : {}),
      ...(f.type === 'string' ? { requiresArg: true } : {}),
    }) as Argv<T>;
  }
  return out;
}
