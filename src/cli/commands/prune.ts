import { defineCommand } from '../command.js';
import { size } from '../format.js';

/** `image prune` removes untagged images and content; `system prune` also unused unpacked layers. */
export function makePrune(snapshots: boolean) {
  return defineCommand<{ dryRun?: boolean; force?: boolean; all?: boolean }>({
    command: 'prune',
    describe: snapshots ? 'Remove untagged images, content and unpacked layers that no image or container uses' : 'Remove untagged images and content that no image or container uses',
    builder: (y) =>
      y
        .option('all', { alias: 'a', type: 'boolean', describe: 'Accepted for docker compatibility: untagged images and content are always removed' })
        .option('force', { alias: 'f', type: 'boolean', describe: 'Do not prompt (berth never prompts)' })
        .option('dry-run', { type: 'boolean', describe: 'Only report what would be removed' }),
    async run(argv, ctx) {
      const r = await (await ctx.berth()).pruneImages({ ...(argv.dryRun ? { dryRun: true } : {}), snapshots, signal: ctx.signal });
      const verb = argv.dryRun ? 'Would delete' : 'Deleted';
      for (const d of r.images) ctx.out(`${verb} image: ${d}`);
      for (const d of r.removed) ctx.out(`${verb}: ${d}`);
      for (const s of r.snapshots) ctx.out(`Deleted snapshot: ${s}`);
      ctx.out(`Total reclaimed space: ${size(r.reclaimed)}`);
    },
  });
}

export const pruneCommand = makePrune(false);
export default pruneCommand;
