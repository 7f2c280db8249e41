import { BerthError } from '../../errors.js';
import { defineCommand } from '../command.js';
import { foreground, parseDockerArgs, rawArgs, type FlagSpec } from './run.js';

const EXEC_FLAGS: FlagSpec[] = [
  { name: 'interactive', short: 'i', type: 'bool' },
  { name: 'tty', short: 't', type: 'bool' },
  { name: 'detach', short: 'd', type: 'bool' },
  { name: 'env', short: 'e', type: 'array' },
  { name: 'workdir', short: 'w', type: 'string' },
  { name: 'user', short: 'u', type: 'string' },
];

export default defineCommand({
  command: 'exec [CONTAINER] [COMMAND..]',
  describe: 'Run a command in a running container',
  builder: (y) =>
    y
      .strict(false)
      .parserConfiguration({ 'unknown-options-as-args': true })
      .positional('CONTAINER', { type: 'string' })
      .positional('COMMAND', { type: 'string', array: true })
      .option('interactive', { alias: 'i', type: 'boolean', describe: 'Keep stdin open' })
      .option('tty', { alias: 't', type: 'boolean', describe: 'Allocate a terminal' })
      .option('env', { alias: 'e', type: 'string', array: true, describe: 'Set NAME=VALUE' })
      .option('workdir', { alias: 'w', type: 'string', describe: 'Working directory (never under /proc)' })
      .option('user', { alias: 'u', type: 'string', describe: 'name|uid[:group|gid]' }),
  async run(_argv, ctx) {
    const { flags: f, positionals, rest } = parseDockerArgs(rawArgs(), ['exec'], EXEC_FLAGS, 1);
    const target = positionals[0];
    if (!target || rest.length === 0) throw new BerthError('INVALID_ARGUMENT', '"berth exec" requires at least 2 arguments: CONTAINER COMMAND', { hint: 'berth exec [OPTIONS] CONTAINER COMMAND [ARG...]' });
    if (f.detach) throw new BerthError('UNSUPPORTED', 'exec -d is not supported yet', { hint: 'run the command in the foreground' });
    const tty = !!f.tty;
    if (tty && !process.stdin.isTTY) throw new BerthError('INVALID_ARGUMENT', 'the input device is not a TTY', { hint: 'drop -t, or run berth from a terminal' });
    const { parseEnvFlags } = await import('../../run/spec.js');
    const { Containers } = await import('../../run/containers.js');
    const containers = await Containers.open(ctx.rootPath);
    const id = await containers.find(target);
    const code = await foreground(
      ctx,
      (io) =>
        containers.exec(
          id,
          {
            args: rest,
            env: parseEnvFlags((f.env as string[] | undefined) ?? []),
            ...(f.workdir !== undefined ? { workdir: f.workdir as string } : {}),
            ...(f.user !== undefined ? { user: f.user as string } : {}),
            tty,
            interactive: !!f.interactive,
          },
          io,
        ),
      { tty, interactive: !!f.interactive },
    );
    ctx.setExitCode(code);
  },
});
