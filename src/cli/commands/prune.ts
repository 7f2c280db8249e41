import { pruneContent } from '../../system.js';
import { defineCommand } from '../command.js';
import { size } from '../format.js';

export const pruneCommand = defineCommand<{ dryRun?: boolean; force?: boolean; all?: boolean }>({
  command: 'prune',
  describe: 'Remove content that no image or container uses',
  builder: (y) =>
    y
      .option('all', { alias: 'a', type: 'boolean', describe: 'Accepted for docker compatibility: untagged content is always removed' })
      .option('force', { alias: 'f', type: 'boolean', describe: 'Do not prompt (berth never prompts)' })
      .option('dry-run', { type: 'boolean', describe: 'Only report what would be removed' }),
  async run(argv, ctx) {
    const store = await ctx.store();
    const r = await pruneContent(store, { ...(argv.dryRun ? { dryRun: true } : {}), signal: ctx.signal });
    for (const d of r.removed) ctx.out(`${argv.dryRun ? 'Would delete' : 'Deleted'}: ${d}`);
    ctx.out(`Total reclaimed space: ${size(r.bytes)}`);
  },
});
export default pruneCommand;
