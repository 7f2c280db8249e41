import { isTerminal as isatty } from '../tty.js';
import { BerthError } from '../../index.js';
import { defineCommand } from '../command.js';
import { parseDockerArgs, yargsOptions, type DockerFlag } from '../dockerflags.js';
import { foreground } from './run.js';

/** docker exec's flags that berth supports. */
export const EXEC_FLAGS: readonly DockerFlag[] = [
  { name: 'interactive', alias: 'i', type: 'boolean', description: 'Keep stdin open' },
  { name: 'tty', alias: 't', type: 'boolean', description: 'Allocate a terminal' },
  { name: 'detach', alias: 'd', type: 'boolean', description: 'Detached mode (not supported yet)' },
  { name: 'env', alias: 'e', type: 'string', repeatable: true, description: 'Set NAME=VALUE' },
  { name: 'env-file', type: 'string', repeatable: true, description: 'Read environment variables from a file' },
  { name: 'workdir', alias: 'w', type: 'string', description: 'Working directory (never under /proc)' },
  { name: 'user', alias: 'u', type: 'string', description: 'name|uid[:group|gid]' },
];

const USAGE = 'berth exec [OPTIONS] CONTAINER COMMAND [ARG...]';

/** How many of the arguments after `exec` are berth's: the flags and CONTAINER. */
export function execSplit(args: readonly string[]): { consumed: number; flags: Record<string, unknown> } {
  const p = parseDockerArgs(args, EXEC_FLAGS, 1, 'exec');
  if (!p.flags.help && (p.positionals.length === 0 || p.rest.length === 0)) {
    throw new BerthError('INVALID_ARGUMENT', '"berth exec" requires at least 2 arguments: CONTAINER COMMAND', { hint: USAGE });
  }
  return p;
}

export default defineCommand({
  command: 'exec <CONTAINER> [COMMAND..]',
  describe: "Run a command in a running container (everything after CONTAINER is the command's)",
  split: execSplit,
  builder: (y) =>
    yargsOptions(
      y
        .strict(false)
        .positional('CONTAINER', { type: 'string', describe: 'Container name or id' })
        .positional('COMMAND', { type: 'string', array: true, describe: 'Command and arguments (required)' }),
      EXEC_FLAGS,
    ),
  async run(_argv, ctx) {
    const { flags: f, positionals } = parseDockerArgs(ctx.split?.own ?? [], EXEC_FLAGS, 1, 'exec');
    const target = positionals[0]!;
    const rest = [...(ctx.split?.rest ?? [])];
    if (f.detach) throw new BerthError('UNSUPPORTED', 'exec -d is not supported yet', { hint: 'run the command in the foreground' });
    const tty = !!f.tty;
    if (tty && !isatty(0)) throw new BerthError('INVALID_ARGUMENT', 'the input device is not a TTY', { hint: 'drop -t, or run berth from a terminal' });
    const container = await (await ctx.berth()).container(target);
    const { exitCode: code } = await foreground((forwardSignals) =>
      container.exec(rest, {
        env: (f.env as string[] | undefined) ?? [],
        envFiles: (f['env-file'] as string[] | undefined) ?? [],
        ...(f.workdir !== undefined ? { workdir: f.workdir as string } : {}),
        ...(f.user !== undefined ? { user: f.user as string } : {}),
        tty,
        stdin: f.interactive ? 'inherit' : 'ignore',
        stdout: 'inherit',
        stderr: 'inherit',
        forwardSignals,
      }),
    );
    ctx.setExitCode(code);
  },
});
