import { defineCommand, type BerthGroup } from '../command.js';
import { size } from '../format.js';
import { printBuildCache } from './prune.js';

/** docker's `builder prune`: the built-in builder's cache only (images are not touched). */
const prune = defineCommand<{ dryRun?: boolean; force?: boolean; all?: boolean }>({
  command: 'prune',
  describe: 'Remove the build cache: step records, cache mounts no running build holds, and the layers only they kept',
  builder: (y) =>
    y
      .option('all', { alias: 'a', type: 'boolean', describe: 'Accepted for docker compatibility: all build cache is always removed' })
      .option('force', { alias: 'f', type: 'boolean', describe: 'Do not prompt (berth never prompts)' })
      .option('dry-run', { type: 'boolean', describe: 'Only report what would be removed' }),
  async run(argv, ctx) {
    const r = await (await ctx.berth()).pruneBuildCache({ ...(argv.dryRun ? { dryRun: true } : {}), signal: ctx.signal });
    const verb = argv.dryRun ? 'Would delete' : 'Deleted';
    printBuildCache(ctx, verb, r);
    for (const d of r.blobs) ctx.out(`${verb}: ${d}`);
    ctx.out(`Total reclaimed space: ${size(r.reclaimed)}`);
  },
});

const group: BerthGroup = { command: 'builder', describe: 'Manage the build cache (prune)', subcommands: [prune] };
export default group;
