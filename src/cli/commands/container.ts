import type { BerthGroup } from '../command.js';
import { defineCommand } from '../command.js';
import { FORMAT_OPTION } from '../format.js';
import { renderValue } from '../gotemplate.js';
import { listContainers, psBuilder } from './ps.js';

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
    const removed = await (await ctx.berth()).pruneContainers();
    if (removed.length) ctx.out('Deleted Containers:\n' + removed.join('\n'));
    ctx.out(`Total containers removed: ${removed.length}`);
  },
});

const inspect = defineCommand<{ containers: string[]; format?: string }>({
  command: 'inspect <containers..>',
  describe: 'Show container records and state as JSON',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }).option('format', { alias: 'f', ...FORMAT_OPTION }),
  async run(argv, ctx) {
    const berth = await ctx.berth();
    const out = [];
    for (const c of argv.containers) out.push(await (await berth.container(c)).inspect());
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
