/**
 * The start-up fast path of the CLI: parse a verb's arguments from the same yargs builder that
 * defines its `--help`, without loading yargs (about 40 ms of every command's start).
 *
 * The builder is run against a recorder that only notes `positional()`/`option()` calls. The
 * parse accepts only what it is sure of: known flags (`--x`, `--x=v`, `--no-x`, `-a`, grouped
 * short booleans `-aq`, `-f v`) and the positionals of the command string. Anything else — `--`,
 * `--help`, an unknown flag, a missing required argument, a value outside `choices`, a repeated
 * single-valued flag, a builder method the recorder does not know — returns undefined, and main
 * hands the words to yargs, which prints its usual message. An array option takes one value per
 * occurrence, as docker's repeated flags do (`-f a -f b`).
 */
import type { BerthCommand, BerthGroup } from './command.js';

interface OptionSpec {
  name: string;
  type?: string;
  alias: string[];
  array: boolean;
  default?: unknown;
  choices?: readonly unknown[];
  demand: boolean;
}

interface PositionalSpec {
  name: string;
  required: boolean;
  variadic: boolean;
  type?: string;
}

interface Recorded {
  options: OptionSpec[];
  positionals: Map<string, { type?: string }>;
  conflicts: [string, string][];
  unsupported: boolean;
}

const asList = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

function record(builder: BerthCommand['builder']): Recorded {
  const r: Recorded = { options: [], positionals: new Map(), conflicts: [], unsupported: false };
  const addOption = (name: string, o: Record<string, unknown> = {}) => {
    if (o.coerce || o.count || o.nargs || o.implies || o.conflicts || o.requiresArg) r.unsupported = true;
    r.options.push({
      name,
      ...(typeof o.type === 'string' ? { type: o.type } : {}),
      alias: asList(o.alias),
      array: !!o.array || o.type === 'array',
      ...('default' in o ? { default: o.default } : {}),
      ...(Array.isArray(o.choices) ? { choices: o.choices } : {}),
      demand: !!o.demandOption,
    });
  };
  const known: Record<string, (...a: any[]) => void> = {
    option: (name: string, o?: Record<string, unknown>) => addOption(name, o),
    options: (all: Record<string, Record<string, unknown>>) => {
      for (const [k, v] of Object.entries(all)) addOption(k, v);
    },
    positional: (name: string, o: Record<string, unknown> = {}) => {
      if (o.coerce || o.choices) r.unsupported = true;
      r.positionals.set(name, typeof o.type === 'string' ? { type: o.type } : {});
    },
    conflicts: (a: string, b: string) => {
      r.conflicts.push([a, b]);
    },
    // Help-only decoration: nothing to parse.
    example: () => {},
    usage: () => {},
    epilog: () => {},
    strict: () => {},
  };
  const proxy: any = new Proxy(
    {},
    {
      get: (_t, prop) =>
        (...a: unknown[]) => {
          const f = typeof prop === 'string' ? known[prop] : undefined;
          if (f) f(...a);
          else r.unsupported = true;
          return proxy;
        },
    },
  );
  builder?.(proxy);
  return r;
}

/** `name <a> [b] [c..]` → the positionals after the name. */
function commandPositionals(command: string): PositionalSpec[] | undefined {
  const out: PositionalSpec[] = [];
  for (const w of command.split(/\s+/).slice(1)) {
    const m = /^([<[])([\w-]+?)(\.\.)?[>\]]$/.exec(w);
    if (!m) return undefined;
    out.push({ name: m[2]!, required: m[1] === '<', variadic: !!m[3] });
  }
  return out;
}

const camel = (s: string) => s.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/** The words that name a command (its first word and its aliases' first words). */
export function commandNames(c: BerthCommand<any> | BerthGroup): string[] {
  return (Array.isArray(c.command) ? c.command : [c.command as string]).map((s) => s.split(/\s+/)[0]!);
}

export interface GlobalSpec {
  /** The global options berth accepts after the verb too (`--root`, `--debug`, `--progress`). */
  options: readonly OptionSpec[];
}

export const GLOBALS: readonly OptionSpec[] = [
  { name: 'root', type: 'string', alias: [], array: false, demand: false },
  { name: 'debug', type: 'boolean', alias: [], array: false, demand: false },
  { name: 'progress', type: 'string', alias: [], array: false, default: 'auto', choices: ['auto', 'tty', 'plain', 'json', 'none'], demand: false },
];

/**
 * Parse `args` (the words after the verb, or after a group's subcommand) for `cmd`, as yargs
 * would; undefined when yargs must look. `pre` holds global flags already read before the verb.
 */
export function quickParse(cmd: BerthCommand<any>, args: readonly string[], verbWords: readonly string[], pre: Record<string, unknown> = {}): Record<string, unknown> | undefined {
  const first = Array.isArray(cmd.command) ? cmd.command[0]! : (cmd.command as string);
  const pos = commandPositionals(first);
  if (!pos) return undefined;
  const rec = record(cmd.builder);
  if (rec.unsupported) return undefined;
  const specs = [...rec.options, ...GLOBALS];
  const byName = new Map<string, OptionSpec>();
  for (const s of specs) for (const n of [s.name, ...s.alias]) byName.set(n, s);
  const values = new Map<OptionSpec, unknown>();
  const positionals: string[] = [];

  const set = (s: OptionSpec, raw: string | boolean): boolean => {
    let v: unknown = raw;
    if (s.type === 'number') {
      if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(Number(raw))) return false;
      v = Number(raw);
    } else if (s.type === 'string') {
      if (typeof raw !== 'string') return false;
    } else if (s.type !== 'boolean') return false;
    if (s.choices && !s.choices.includes(v)) return false;
    if (s.array) {
      const list = (values.get(s) as unknown[] | undefined) ?? [];
      list.push(v);
      values.set(s, list);
      return true;
    }
    if (values.has(s)) return false; // yargs would make it an array: let it decide
    values.set(s, v);
    return true;
  };

  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return undefined; // yargs puts what follows in `_`: its rules, its parse
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
      const inline = eq === -1 ? undefined : a.slice(eq + 1);
      let s = byName.get(name);
      let neg = false;
      if (!s && name.startsWith('no-')) {
        s = byName.get(name.slice(3));
        neg = true;
        if (s && (s.type !== 'boolean' || inline !== undefined)) return undefined;
      }
      if (!s) return undefined;
      if (s.type === 'boolean') {
        if (inline !== undefined && !/^(true|false)$/.test(inline)) return undefined;
        if (!set(s, neg ? false : inline !== 'false')) return undefined;
      } else {
        const v = inline ?? args[++i];
        if (v === undefined || (inline === undefined && v.startsWith('-') && v !== '-')) return undefined;
        if (!set(s, v)) return undefined;
      }
    } else if (a.startsWith('-') && a.length > 1 && a !== '-') {
      const letters = a.slice(1);
      if (!/^[a-zA-Z]+$/.test(letters)) return undefined;
      for (let k = 0; k < letters.length; k++) {
        const s = byName.get(letters[k]!);
        if (!s) return undefined;
        if (s.type === 'boolean') {
          if (!set(s, true)) return undefined;
        } else {
          // only the last letter of a group may take a value, from the next word
          if (k !== letters.length - 1) return undefined;
          const v = args[++i];
          if (v === undefined || (v.startsWith('-') && v !== '-')) return undefined;
          if (!set(s, v)) return undefined;
        }
      }
    } else positionals.push(a);
  }

  const argv: Record<string, unknown> = { _: [...verbWords], $0: 'berth' };
  for (const s of specs) {
    const has = values.has(s) || (s.name in pre && GLOBALS.includes(s));
    if (!has && s.demand) return undefined;
    const v = values.has(s) ? values.get(s) : s.name in pre && GLOBALS.includes(s) ? pre[s.name] : s.default;
    if (v === undefined) continue;
    for (const n of [s.name, ...s.alias]) {
      argv[n] = v;
      argv[camel(n)] = v;
    }
  }
  for (const [a, b] of rec.conflicts) if (values.has(byName.get(a)!) && values.has(byName.get(b)!)) return undefined;

  let p = 0;
  for (const spec of pos) {
    const type = rec.positionals.get(spec.name)?.type;
    const take = spec.variadic ? positionals.slice(p) : p < positionals.length ? [positionals[p]!] : [];
    p += take.length;
    if (spec.required && take.length === 0) return undefined;
    // yargs turns numeric-looking untyped positionals into numbers: leave those to it
    if (type !== 'string' && take.some((w) => /^-?\d/.test(w))) return undefined;
    if (take.length === 0) continue;
    const v = spec.variadic ? take : take[0];
    argv[spec.name] = v;
    argv[camel(spec.name)] = v;
  }
  if (p < positionals.length) return undefined; // too many: yargs' strict mode reports it
  return argv;
}
