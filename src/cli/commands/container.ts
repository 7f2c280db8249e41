import type { BerthGroup } from '../command.js';
import { defineCommand } from '../command.js';
import type { ContainerInfo } from '../../run/containers.js';
import { FORMAT_OPTION } from '../format.js';
import { renderValue } from '../gotemplate.js';
import { listContainers, psBuilder } from './ps.js';

/** Docker's container-inspect keys (Id, Name, Image, State.Status, Config.Cmd, …) over berth's record. */
function containerInspect(i: ContainerInfo) {
  const r = i.record;
  return {
    Id: r.id,
    Created: r.created,
    Path: r.args[0] ?? '',
    Args: r.args.slice(1),
    State: {
      Status: i.status,
      Running: i.status === 'running',
      Pid: i.status === 'running' ? (i.state.pid ?? 0) : 0,
      ExitCode: i.state.exitCode ?? 0,
      StartedAt: i.state.startedAt ?? '',
      FinishedAt: i.state.finishedAt ?? '',
      ...i.state,
      status: i.status,
    },
    Image: r.image.config,
    Name: `/${r.name}`,
    Config: { Hostname: r.hostname, Tty: r.tty, OpenStdin: r.interactive, Cmd: r.args, Image: r.image.name ?? r.image.ref },
    ...r,
  };
}

const ls = defineCommand<{ all?: boolean; quiet?: boolean; format?: string; trunc?: boolean; size?: boolean }>({
  command: ['ls', 'list', 'ps'],
  describe: 'List containers',
  builder: psBuilder,
  async run(argv, ctx) {
    await listContainers(argv, ctx);
  },
});

const prune = defineCommand<{ force?: boolean }>({
  command: 'prune',
  describe: 'Remove all stopped containers',
  builder: (y) => y.option('force', { alias: 'f', type: 'boolean', describe: 'Do not ask (berth never asks)' }),
  async run(_argv, ctx) {
    const { Containers } = await import('../../run/containers.js');
    const containers = await Containers.open(ctx.rootPath);
    const removed = await containers.prune();
    if (removed.length) ctx.out('Deleted Containers:\n' + removed.join('\n'));
    ctx.out(`Total containers removed: ${removed.length}`);
  },
});

const inspect = defineCommand<{ containers: string[]; format?: string }>({
  command: 'inspect <containers..>',
  describe: 'Show container records and state as JSON',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }).option('format', { alias: 'f', ...FORMAT_OPTION }),
  async run(argv, ctx) {
    const { Containers } = await import('../../run/containers.js');
    const containers = await Containers.open(ctx.rootPath);
    const out = [];
    for (const c of argv.containers) {
      const i = await containers.info(await containers.find(c));
      out.push(containerInspect(i));
    }
    if (argv.format) ctx.out(out.map((o) => renderValue(argv.format!, o)).join('\n'));
    else ctx.json(out);
  },
});

const group: BerthGroup = {
  command: 'container',
  describe: 'Manage containers (ls, prune, inspect)',
  subcommands: [ls, prune, inspect],
};
export default group;
