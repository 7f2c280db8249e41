import { createRequire } from 'node:module';
import type { Argv } from 'yargs';
import { BerthError, EXIT_CODES } from '../index.js';
import type { Berth, ProgressEvent } from '../index.js';
import type { BerthCommand, BerthGroup } from './command.js';
import { COMMANDS, type CommandEntry } from './commands/index.js';
import type { CliContext, GlobalArgs } from './context.js';
import { createProgress, pickMode } from './progress.js';
import { commandNames, quickParse } from './quickparse.js';

function isGroup(m: BerthCommand<any> | BerthGroup): m is BerthGroup {
  return 'subcommands' in m;
}

function register(y: Argv<GlobalArgs>, cmd: BerthCommand<any>, ctxOf: (argv: GlobalArgs) => CliContext, aliases: readonly string[] = []): Argv<GlobalArgs> {
  const names = Array.isArray(cmd.command) ? [...cmd.command] : [cmd.command as string];
  return y.command({
    command: names[0]!,
    aliases: [...names.slice(1), ...aliases],
    describe: cmd.describe,
    builder: (b: Argv<GlobalArgs>) => (cmd.builder ? cmd.builder(b) : b) as Argv<GlobalArgs>,
    handler: async (argv: any) => {
      await cmd.run(argv, ctxOf(argv));
    },
  });
}

/** The one catch: one line on stderr, an exit code from the error's category. */
function report(e: unknown, debug: boolean): number {
  if (e instanceof BerthError) {
    process.stderr.write(`berth: ${e.oneLine()}\n`);
    for (const l of e.detail) process.stderr.write(`  ${l}\n`);
    if (debug) process.stderr.write(`${e.stack}\n${e.cause ? `caused by: ${(e.cause as Error).stack ?? String(e.cause)}\n` : ''}`);
    return e.exitCode;
  }
  const err = e as Error;
  if (err?.name === 'YError') {
    process.stderr.write(`berth: ${err.message.replace(/\s*\n\s*/g, ' ')}: see berth --help\n`);
    return EXIT_CODES.INVALID_ARGUMENT;
  }
  if (err?.name === 'AbortError') {
    process.stderr.write('berth: aborted\n');
    return EXIT_CODES.ABORTED;
  }
  process.stderr.write(`berth: internal error: ${err?.message ?? String(e)}${debug ? '' : ' (run with --debug for details)'}\n`);
  if (debug) process.stderr.write(`${err?.stack ?? ''}\n`);
  return EXIT_CODES.INTERNAL;
}

/** Global flags that take a value (`--root DIR`; `--root=DIR` is one word). */
const GLOBAL_WITH_VALUE = new Set(['--root', '--progress']);

/** The index of the verb: the first positional word, skipping global flags and their values; -1 if none. */
function findVerb(args: readonly string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return i + 1 < args.length ? i + 1 : -1;
    if (GLOBAL_WITH_VALUE.has(a)) {
      i++;
      continue;
    }
    if (!a.startsWith('-')) return i;
  }
  return -1;
}

/** Whether berth's own arguments ask for --debug (a `--` ends berth's flags). */
function wantsDebug(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--debug' || /^--debug=(true|1|yes)$/i.test(a)) return true;
  }
  return false;
}

/** Only global flags (and their values): bare `berth` prints the help, as docker does. */
function onlyGlobals(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (GLOBAL_WITH_VALUE.has(a)) i++;
    else if (a !== '--debug' && !/^--(root|progress|debug)=/.test(a)) return false;
  }
  return true;
}

/**
 * yargs 17's CommonJS build is one bundled file: loading it through require costs about a third
 * of what yargs 18's ESM graph does (it compiles string-width's emoji tables at load), and every
 * berth command pays that on start, except run and exec without --help, which never load it.
 */
const loadYargs = () => createRequire(import.meta.url)('yargs/yargs') as (args: string[]) => Argv<GlobalArgs>;

const PROGRESS = ['auto', 'tty', 'plain', 'json', 'none'] as const;

/**
 * berth's global flags before the verb, when they are nothing else (`--root DIR`, `--root=DIR`,
 * `--progress MODE`, `--debug`); undefined when yargs must look (help, version, a typo).
 */
function plainGlobals(args: readonly string[]): GlobalArgs | undefined {
  const g: GlobalArgs = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--(root|progress)(?:=(.*))?$/.exec(a);
    if (m) {
      const v = m[2] ?? args[++i];
      if (v === undefined) return undefined;
      if (m[1] === 'root') g.root = v;
      else g.progress = v as GlobalArgs['progress'];
    } else if (a === '--debug') g.debug = true;
    else return undefined;
  }
  return g;
}

export async function main(args: string[]): Promise<void> {
  // Only the verb being run is imported; the others are listed from the table.
  const vi = findVerb(args);
  const verb = vi >= 0 ? args[vi] : undefined;
  const entry: CommandEntry | undefined = verb === undefined ? undefined : COMMANDS.find((c) => c.name === verb || c.aliases?.includes(verb));
  // Until the verb's own arguments are split off, only what comes before the verb is berth's.
  let debug = wantsDebug(vi >= 0 ? args.slice(0, vi) : args);
  let split: CliContext['split'];
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    controller.abort(new BerthError('ABORTED', `interrupted by ${sig}`));
    // Whatever does not honour the abort in time is not allowed to keep the process alive.
    setTimeout(() => process.exit(128 + (sig === 'SIGINT' ? 2 : 15)), 15_000).unref();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let berthPromise: Promise<Berth> | undefined;
  const ctxOf = (argv: GlobalArgs): CliContext => {
    return {
      debug,
      signal: controller.signal,
      berth: () => (berthPromise ??= import('../index.js').then((m) => m.openBerth(argv.root !== undefined ? { root: argv.root } : {}))),
      out: (text) => void process.stdout.write(text.endsWith('\n') ? text : text + '\n'),
      json: (value) => void process.stdout.write(JSON.stringify(value, null, 2) + '\n'),
      warn: (text) => void process.stderr.write(`berth: warning: ${text}\n`),
      progress: (label) => {
        const p = createProgress(pickMode(argv.progress), label);
        return { onProgress: (e: ProgressEvent) => p.onProgress(e), done: p.done };
      },
      setExitCode: (code) => {
        process.exitCode = code;
      },
      ...(split ? { split } : {}),
    };
  };

  if (!verb && (args.includes('--version') || args.includes('-v'))) {
    const { berthVersion } = await import('./commands/version.js');
    process.stdout.write(`berth version ${await berthVersion()}\n`);
    return;
  }

  let mod: BerthCommand<any> | BerthGroup | undefined;
  let own = args;
  try {
    mod = entry ? (await entry.load()).default : undefined;
    if (mod && !isGroup(mod) && mod.split) {
      // run/exec: berth's part ends at the image/container; the rest is never parsed as berth's.
      const after = args.slice(vi + 1);
      const { consumed, flags } = mod.split(after);
      own = args.slice(0, vi + 1 + consumed);
      split = { own: after.slice(0, consumed), rest: after.slice(consumed) };
      const pre = plainGlobals(args.slice(0, vi));
      if (pre && !flags.help) {
        // No help asked for: the verb's table already parsed every flag, yargs is not needed.
        const g: GlobalArgs = {
          ...pre,
          ...(flags.root !== undefined ? { root: String(flags.root) } : {}),
          ...(flags.progress !== undefined ? { progress: String(flags.progress) as GlobalArgs['progress'] } : {}),
          ...(flags.debug !== undefined ? { debug: !!flags.debug } : {}),
        };
        debug = !!g.debug;
        if (g.progress !== undefined && !(PROGRESS as readonly string[]).includes(g.progress)) {
          throw new BerthError('INVALID_ARGUMENT', `invalid --progress ${JSON.stringify(g.progress)}`, { hint: `use one of ${PROGRESS.join(', ')}` });
        }
        await mod.run({ _: [], $0: 'berth', progress: 'auto', ...g } as never, ctxOf(g));
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        return;
      }
    }
    // Every other verb: its own builder's table, read without yargs when the words are plain.
    const pre = plainGlobals(args.slice(0, Math.max(vi, 0)));
    if (pre && mod && !split) {
      const sub = isGroup(mod) ? mod.subcommands.find((c) => commandNames(c).includes(args[vi + 1] ?? '')) : mod;
      const argv = sub && quickParse(sub, args.slice(vi + (isGroup(mod) ? 2 : 1)), isGroup(mod) ? [verb!, args[vi + 1]!] : [verb!], pre as Record<string, unknown>);
      if (sub && argv) {
        debug = !!argv.debug;
        await sub.run(argv as never, ctxOf(argv as GlobalArgs));
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        return;
      }
    }
    const helpAt = args.findIndex((a) => a === '--help' || a === '-h');
    if (!verb && (onlyGlobals(args) || (helpAt >= 0 && plainGlobals(args.filter((_a, i) => i !== helpAt)) && args.lastIndexOf('--help') === args.indexOf('--help')))) {
      // `berth` and `berth --help`: the command list from the table, no command module, no yargs.
      process.stdout.write(topHelp());
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      return;
    }
  } catch (e) {
    process.exitCode = report(e, debug);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    return;
  }
  debug = wantsDebug(own);
  if (!verb && onlyGlobals(args)) own = [...args, '--help'];

  let y = loadYargs()(own)
    .scriptName('berth')
    .usage('berth: daemonless container images (build, load/save, pull/push, copy, run)\n\nUsage: berth [--root DIR] COMMAND')
    .option('root', { type: 'string', describe: 'Store root (default: BERTH_ROOT, /var/lib/berth as root, else $XDG_DATA_HOME/berth)', global: true })
    .option('debug', { type: 'boolean', describe: 'Show stack traces and internal detail', global: true })
    .option('progress', { choices: PROGRESS, default: 'auto' as const, describe: 'Progress on stderr', global: true })
    .version(false)
    .option('version', { alias: 'v', type: 'boolean', describe: 'Show the version', global: false })
    .strict()
    .demandCommand(1, 'give a command')
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      throw err ?? new BerthError('INVALID_ARGUMENT', `${msg.replace(/\s*\n\s*/g, ' ')}`, { hint: 'see berth --help' });
    }) as unknown as Argv<GlobalArgs>;

  // yargs renders and caches the whole help text after starting every command handler (so a
  // handler could show help later); berth's handlers never do, and the rendering costs tens of ms.
  const usage = (y as unknown as { getInternalMethods?: () => { getUsageInstance: () => { cacheHelpMessage?: () => void } } }).getInternalMethods?.().getUsageInstance();
  if (usage?.cacheHelpMessage) usage.cacheHelpMessage = () => {};

  for (const c of COMMANDS) {
    if (c === entry) continue;
    y = y.command(c.name, c.describe, (b) => b.strict(false), () => {}) as Argv<GlobalArgs>;
  }
  try {
    if (entry && mod) {
      if (isGroup(mod)) {
        y = y.command(mod.command, mod.describe, (b) => {
          let g = b as Argv<GlobalArgs>;
          for (const s of mod.subcommands) g = register(g, s, ctxOf);
          return g.demandCommand(1, `give a ${entry.name} subcommand`);
        }) as Argv<GlobalArgs>;
      } else {
        y = register(y, mod, ctxOf, entry.aliases?.filter((a) => !a.includes(' ')) ?? []);
      }
    }
    await y.parseAsync();
  } catch (e) {
    process.exitCode = report(e, debug);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** `berth --help`: the same text yargs prints for the top level, rendered from the command table. */
function topHelp(): string {
  const width = Math.min(110, process.stdout.columns || 100);
  const wrap = (text: string, indent: number): string => {
    const out: string[] = [];
    let line = '';
    for (const w of text.split(' ')) {
      if (line && indent + line.length + 1 + w.length > width) {
        out.push(line);
        line = w;
      } else line = line ? `${line} ${w}` : w;
    }
    out.push(line);
    return out.join('\n' + ' '.repeat(indent));
  };
  const names = COMMANDS.map((c) => `berth ${c.name}`);
  const col = Math.max(...names.map((n) => n.length)) + 2;
  const cmds = COMMANDS.map((c, i) => `  ${names[i]!.padEnd(col)}${wrap(c.describe, col + 2)}`).join('\n');
  const opts: [string, string, string][] = [
    ['    --root', 'Store root (default: BERTH_ROOT, /var/lib/berth as root, else $XDG_DATA_HOME/berth)', '[string]'],
    ['    --debug', 'Show stack traces and internal detail', '[boolean]'],
    ['    --progress', 'Progress on stderr', `[choices: ${PROGRESS.map((p) => `"${p}"`).join(', ')}] [default: "auto"]`],
    ['-v, --version', 'Show the version', '[boolean]'],
    ['-h, --help', 'Show help', '[boolean]'],
  ];
  const ocol = Math.max(...opts.map((o) => o[0].length)) + 2;
  const optText = opts
    .map(([f, d, t]) => {
      const body = wrap(d, ocol + 2);
      const last = body.split('\n').pop()!;
      const room = width - (body.includes('\n') ? last.length : ocol + 2 + last.length);
      return `  ${f.padEnd(ocol)}${body}${room > t.length + 1 ? ' '.repeat(room - t.length) + t : `\n${' '.repeat(Math.max(0, width - t.length))}${t}`}`;
    })
    .join('\n');
  return (
    'berth: daemonless container images (build, load/save, pull/push, copy, run)\n\n' +
    'Usage: berth [--root DIR] COMMAND\n\n' +
    `Commands:\n${cmds}\n\nOptions:\n${optText}\n`
  );
}
