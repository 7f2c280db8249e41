import { isatty } from 'node:tty';
import { BerthError } from '../../index.js';
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

/** Run a supervised process in the foreground: stdio through us, signals forwarded. */
export async function foreground(fn: (io: import('../../run/containers.js').SuperviseIO) => Promise<number>, o: { tty: boolean; interactive: boolean }): Promise<number> {
  const sig = takeSignals();
  process.stdout.on('error', () => {});
  try {
    return await fn({
      stdin: o.interactive ? 'inherit' : 'ignore',
      tty: o.tty,
      stdout: process.stdout,
      stderr: process.stderr,
      forwardSignals: (fwd) => sig.install(fwd),
    });
  } finally {
    sig.restore();
  }
}

async function runMain(ctx: CliContext, progressFlag: string): Promise<void> {
  const own = ctx.split?.own ?? [];
  const { flags, positionals } = parseDockerArgs(own, RUN_FLAGS, 1, 'run');
  const image = positionals[0]!;
  const { runRequest } = await import('../../run/options.js');
  const req = runRequest(image, ctx.split?.rest ?? [], flags, { stdinIsTTY: isatty(0) } /* process.stdin would set up a stream for nothing */);
  for (const w of req.warnings) ctx.warn(w);
  const { Containers } = await import('../../run/containers.js');
  const containers = await Containers.open(ctx.rootPath);
  const v = await containers.checkRunc();
  if (v.fresh && v.warning) ctx.warn(v.warning);
  // Unpack progress only on a terminal (or when asked): stderr is also the container's.
  const p = progressFlag !== 'auto' || isatty(2) ? ctx.progress('unpacking') : { onProgress: () => {}, done: () => {} };
  let record;
  try {
    const opts = { ...req.create, signal: ctx.signal, onProgress: p.onProgress };
    const pull = async () => {
      // The CLI pulls (run/ does not depend on registry/); create itself never does.
      const { pull: pullImage } = await import('../../pull.js');
      await pullImage(await (await ctx.berth()).store(), image, { signal: ctx.signal, onProgress: p.onProgress });
    };
    if (req.pull === 'always') await pull();
    try {
      record = await containers.create(async () => (await ctx.berth()).store(), opts);
    } catch (e) {
      if (req.pull !== 'missing' || !(e instanceof BerthError && e.code === 'NOT_FOUND' && /^no such image/.test(e.message))) throw e;
      await pull();
      record = await containers.create(async () => (await ctx.berth()).store(), opts);
    }
  } finally {
    p.done();
  }
  if (req.detach) {
    await containers.startDetached(record.id);
    ctx.out(record.id);
    return;
  }
  const code = await foreground((io) => containers.supervise(record.id, io), { tty: !!req.create.tty, interactive: !!req.create.interactive });
  ctx.setExitCode(code);
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
