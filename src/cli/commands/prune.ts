import { pruneContent, pruneSnapshots } from '../../system.js';
import { defineCommand } from '../command.js';
import { size } from '../format.js';

/** `image prune` removes content; `system prune` also removes unused unpacked layers. */
export function makePrune(snapshots: boolean) {
  return defineCommand<{ dryRun?: boolean; force?: boolean; all?: boolean }>({
    command: 'prune',
    describe: snapshots ? 'Remove content and unpacked layers that no image or container uses' : 'Remove content that no image or container uses',
    builder: (y) =>
      y
        .option('all', { alias: 'a', type: 'boolean', describe: 'Accepted for docker compatibility: untagged content is always removed' })
        .option('force', { alias: 'f', type: 'boolean', describe: 'Do not prompt (berth never prompts)' })
        .option('dry-run', { type: 'boolean', describe: 'Only report what would be removed' }),
    async run(argv, ctx) {
      const store = await ctx.store();
      const r = await pruneContent(store, { ...(argv.dryRun ? { dryRun: true } : {}), signal: ctx.signal });
      for (const d of r.removed) ctx.out(`${argv.dryRun ? 'Would delete' : 'Deleted'}: ${d}`);
      if (snapshots && !argv.dryRun) for (const s of await pruneSnapshots(store)) ctx.out(`Deleted snapshot: ${s}`);
      ctx.out(`Total reclaimed space: ${size(r.bytes)}`);
    },
  });
}

export const pruneCommand = makePrune(false);
export default pruneCommand;
