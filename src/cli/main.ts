import { createRequire } from 'node:module';
import type { Argv } from 'yargs';
import { BerthError, EXIT_CODES } from '../errors.js';
import type { ProgressEvent } from '../oci/content.js';
import { resolveRoot } from '../store/root.js';
import type { ContentStore } from '../store/store.js';
import type { BerthCommand, BerthGroup } from './command.js';
import { COMMANDS, type CommandEntry } from './commands/index.js';
import type { CliContext, GlobalArgs } from './context.js';
import { createProgress, pickMode } from './progress.js';

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

/** The first positional word, skipping the values of the global options that take one. */
function findVerb(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return args[i + 1];
    if (a === '--root' || a === '--progress') {
      i++;
      continue;
    }
    if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * yargs 17's CommonJS build is one bundled file: loading it through require costs about a third
 * of what yargs 18's ESM graph does (it compiles string-width's emoji tables at load), and every
 * berth command pays that on start.
 */
const yargs = createRequire(import.meta.url)('yargs/yargs') as (args: string[]) => Argv<GlobalArgs>;

export async function main(args: string[]): Promise<void> {
  const debug = args.includes('--debug');
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

  let storePromise: Promise<ContentStore> | undefined;
  const ctxOf = (argv: GlobalArgs): CliContext => {
    const rootPath = resolveRoot(argv.root);
    return {
      rootPath,
      debug,
      signal: controller.signal,
      store: () =>
        (storePromise ??= import('../store/store.js').then((m) => m.ContentStore.open(rootPath))),
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
    };
  };

  // Only the verb being run is imported; the others are listed from the table.
  const verb = findVerb(args);
  const entry: CommandEntry | undefined = COMMANDS.find((c) => c.name === verb || c.aliases?.includes(verb ?? ''));
  if (!verb && (args.includes('--version') || args.includes('-v'))) {
    const { berthVersion } = await import('./commands/version.js');
    process.stdout.write(`berth version ${await berthVersion()}\n`);
    return;
  }

  let y = yargs(args)
    .scriptName('berth')
    .usage('berth: daemonless container images (build, load/save, pull/push, copy, run)\n\nUsage: berth [--root DIR] COMMAND')
    .option('root', { type: 'string', describe: 'Store root (default: BERTH_ROOT, /var/lib/berth as root, else $XDG_DATA_HOME/berth)', global: true })
    .option('debug', { type: 'boolean', describe: 'Show stack traces and internal detail', global: true })
    .option('progress', { choices: ['auto', 'tty', 'plain', 'json', 'none'] as const, default: 'auto' as const, describe: 'Progress on stderr', global: true })
    .version(false)
    .option('version', { alias: 'v', type: 'boolean', describe: 'Show the version' })
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
    // Bare `berth` (global flags at most): the help, exit 0, as docker does.
    if (!verb && !args.some((a) => a === '--help' || a === '-h')) {
      y.showHelp((s) => process.stdout.write(s + '\n'));
      return;
    }
    if (entry) {
      const mod = (await entry.load()).default;
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
