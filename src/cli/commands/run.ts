import { isTerminal as isatty } from '../tty.js';
import { BerthError } from '../../index.js';
import type { ForwardSignals, PullPolicy, RunOptions } from '../../index.js';
import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';
import { parseDockerArgs, yargsOptions, type DockerFlag } from '../dockerflags.js';


/** docker run's flags that berth supports: the one table behind `--help` and the parse. */
export const RUN_FLAGS: readonly DockerFlag[] = [
  { name: 'name', type: 'string', description: 'Container name' },
  { name: 'rm', type: 'boolean', description: 'Remove the container when it exits' },
  { name: 'detach', alias: 'd', type: 'boolean', description: 'Run in the background and print the container id' },
  { name: 'interactive', alias: 'i', type: 'boolean', description: 'Keep stdin open' },
  { name: 'tty', alias: 't', type: 'boolean', description: 'Allocate a terminal (foreground only)' },
  { name: 'env', alias: 'e', type: 'string', repeatable: true, description: 'Set NAME=VALUE (or pass NAME from the environment)' },
  { name: 'env-file', type: 'string', repeatable: true, description: 'Read environment variables from a file' },
  { name: 'workdir', alias: 'w', type: 'string', description: 'Working directory inside the container' },
  { name: 'user', alias: 'u', type: 'string', description: 'name|uid[:group|gid]' },
  { name: 'entrypoint', type: 'string', description: 'Override the image Entrypoint' },
  { name: 'volume', alias: 'v', type: 'string', repeatable: true, description: 'Bind mount /host:/ctr[:ro]' },
  { name: 'tmpfs', type: 'string', repeatable: true, description: 'Mount a tmpfs: /path[:options]' },
  { name: 'read-only', type: 'boolean', description: 'Mount the root filesystem read-only' },
  { name: 'network', type: 'string', description: 'host or none (default: private namespace, loopback only)' },
  { name: 'net', type: 'string', hidden: true, as: 'network', description: 'Same as --network' },
  { name: 'hostname', type: 'string', description: 'Container hostname' },
  { name: 'memory', alias: 'm', type: 'string', description: 'Memory limit (e.g. 512m)' },
  { name: 'cpus', type: 'string', description: 'Number of CPUs (e.g. 1.5)' },
  { name: 'pids-limit', type: 'string', description: 'Process limit (-1: unlimited)' },
  { name: 'cap-add', type: 'string', repeatable: true, description: 'Add a capability (or ALL)' },
  { name: 'cap-drop', type: 'string', repeatable: true, description: 'Drop a capability (or ALL)' },
  { name: 'privileged', type: 'boolean', description: 'All capabilities, no masked paths, all devices' },
  { name: 'pull', type: 'string', description: 'missing | never | always (default missing)' },
  { name: 'init', type: 'boolean', description: 'Run tini as PID 1 (reaps zombies, forwards signals)' },
];

/** How many of the arguments after `run` are berth's: the flags and IMAGE (main.ts splits there). */
export function runSplit(args: readonly string[]): { consumed: number; flags: Record<string, unknown> } {
  const p = parseDockerArgs(args, RUN_FLAGS, 1, 'run');
  if (p.positionals.length === 0 && !p.flags.help) {
    throw new BerthError('INVALID_ARGUMENT', '"berth run" requires at least 1 argument: IMAGE', { hint: 'berth run [OPTIONS] IMAGE [COMMAND] [ARG...]' });
  }
  return p;
}

/** Forward SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/2 to the container while it runs in the foreground. */
export function takeSignals(): { install: (fwd: (s: NodeJS.Signals) => void) => void; restore: () => void } {
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  const saved = new Map(sigs.map((s) => [s, process.listeners(s)] as const));
  const handlers = new Map<NodeJS.Signals, () => void>();
  return {
    install(fwd) {
      for (const s of sigs) {
        process.removeAllListeners(s);
        const h = () => fwd(s);
        handlers.set(s, h);
        process.on(s, h);
      }
    },
    restore() {
      for (const [s, h] of handlers) process.off(s, h);
      for (const [s, ls] of saved) for (const l of ls) process.on(s, l as () => void);
    },
  };
}

/**
 * Run a process in the foreground: our stdout's errors (a closed pipe) ignored, and SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 forwarded to it from the moment runc was spawned.
 */
export async function foreground<T>(fn: (forwardSignals: ForwardSignals) => Promise<T>): Promise<T> {
  const sig = takeSignals();
  process.stdout.on('error', () => {});
  try {
    return await fn((fwd) => sig.install(fwd));
  } finally {
    sig.restore();
  }
}

const NETWORKS = ['host', 'none', 'bridge', 'default', 'private'];

/** docker run's flags (as the flag table parsed them, keyed by long name) → the facade's options, with docker's rules. */
export function runOptions(f: Record<string, unknown>, ctx: { stdinIsTTY: boolean }): { options: RunOptions; detach: boolean; warnings: string[] } {
  const str = (k: string): string | undefined => (f[k] === undefined ? undefined : String(f[k]));
  const list = (k: string): string[] => (f[k] === undefined ? [] : Array.isArray(f[k]) ? (f[k] as unknown[]).map(String) : [String(f[k])]);
  const num = (k: string): number | undefined => {
    const v = str(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new BerthError('INVALID_ARGUMENT', `invalid --${k} ${JSON.stringify(v)}`, { hint: 'give a number' });
    return n;
  };
  const network = str('network');
  if (network !== undefined && !NETWORKS.includes(network)) {
    throw new BerthError('INVALID_ARGUMENT', `unsupported --network ${JSON.stringify(network)}`, { hint: 'berth supports --network host or none (the default is a private network namespace with loopback only)' });
  }
  const pull = str('pull') ?? 'missing';
  if (!['missing', 'never', 'always'].includes(pull)) throw new BerthError('INVALID_ARGUMENT', `invalid --pull ${JSON.stringify(pull)}`, { hint: 'use missing, never or always' });
  const detach = !!f.detach;
  const warnings: string[] = [];
  let tty = !!f.tty;
  if (tty && detach) {
    warnings.push('-t with -d: berth cannot hand a detached container a terminal yet; running it without one');
    tty = false;
  }
  if (tty && !ctx.stdinIsTTY) throw new BerthError('INVALID_ARGUMENT', 'the input device is not a TTY', { hint: 'drop -t, or run berth from a terminal' });
  const cpus = num('cpus');
  const pidsLimit = num('pids-limit');
  const options: RunOptions = {
    ...(str('name') !== undefined ? { name: str('name')! } : {}),
    ...(str('entrypoint') !== undefined ? { entrypoint: str('entrypoint')! } : {}),
    envFiles: list('env-file'),
    env: list('env'),
    ...(str('workdir') !== undefined ? { workdir: str('workdir')! } : {}),
    ...(str('user') !== undefined ? { user: str('user')! } : {}),
    volumes: list('volume'),
    tmpfs: list('tmpfs'),
    readOnly: !!f['read-only'],
    ...(network ? { network: network === 'host' || network === 'none' ? network : 'private' } : {}),
    ...(str('hostname') !== undefined ? { hostname: str('hostname')! } : {}),
    ...(str('memory') !== undefined ? { memory: str('memory')! } : {}),
    ...(cpus !== undefined ? { cpus } : {}),
    ...(pidsLimit !== undefined ? { pidsLimit } : {}),
    capAdd: list('cap-add'),
    capDrop: list('cap-drop'),
    privileged: !!f.privileged,
    rm: !!f.rm,
    init: !!f.init,
    tty,
    stdin: f.interactive ? 'inherit' : 'ignore',
    pull: pull as PullPolicy,
  };
  return { options, detach, warnings };
}

async function runMain(ctx: CliContext, progressFlag: string): Promise<void> {
  const own = ctx.split?.own ?? [];
  const { flags, positionals } = parseDockerArgs(own, RUN_FLAGS, 1, 'run');
  const image = positionals[0]!;
  const cmd = ctx.split?.rest ?? [];
  const req = runOptions(flags, { stdinIsTTY: isatty(0) } /* process.stdin would set up a stream for nothing */);
  for (const w of req.warnings) ctx.warn(w);
  const berth = await ctx.berth();
  // Unpack progress only on a terminal (or when asked): stderr is also the container's.
  const p = progressFlag !== 'auto' || isatty(2) ? ctx.progress('unpacking') : { onProgress: () => {}, done: () => {} };
  const opts: RunOptions = { ...req.options, signal: ctx.signal, onProgress: p.onProgress, onWarning: (w) => ctx.warn(w) };
  if (req.detach) {
    let created;
    try {
      created = await berth.create(image, cmd, opts);
    } finally {
      p.done();
    }
    await created.start();
    ctx.out(created.id);
    return;
  }
  try {
    const r = await foreground((forwardSignals) =>
      berth.run(image, cmd, {
        ...opts,
        stdout: 'inherit',
        stderr: 'inherit',
        forwardSignals: (fwd) => {
          p.done(); // runc was spawned: the output from here on is the container's
          forwardSignals(fwd);
        },
      }),
    );
    ctx.setExitCode(r.exitCode);
  } finally {
    p.done();
  }
}

export default defineCommand({
  command: 'run <IMAGE> [COMMAND..]',
  describe: 'Run a command in a new container (everything after IMAGE is the container\'s)',
  split: runSplit,
  builder: (y) =>
    yargsOptions(
      y
        .strict(false)
        .positional('IMAGE', { type: 'string', describe: 'Image name or id' })
        .positional('COMMAND', { type: 'string', array: true, describe: 'Command and arguments (default: the image Entrypoint and Cmd)' }),
      RUN_FLAGS,
    ),
  async run(argv, ctx) {
    await runMain(ctx, argv.progress ?? 'auto');
  },
});
