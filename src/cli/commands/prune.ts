import { defineCommand } from '../command.js';
import { size } from '../format.js';

/** `image prune` removes untagged images and content; `system prune` also the build cache and unused unpacked layers. */
export function makePrune(snapshots: boolean) {
  return defineCommand<{ dryRun?: boolean; force?: boolean; all?: boolean }>({
    command: 'prune',
    describe: snapshots ? 'Remove untagged images, the build cache, and content and unpacked layers that no image or container uses' : 'Remove untagged images and content that no image or container uses',
    builder: (y) =>
      y
        .option('all', { alias: 'a', type: 'boolean', describe: 'Accepted for docker compatibility: untagged images and content are always removed' })
        .option('force', { alias: 'f', type: 'boolean', describe: 'Do not prompt (berth never prompts)' })
        .option('dry-run', { type: 'boolean', describe: 'Only report what would be removed' }),
    async run(argv, ctx) {
      const r = await (await ctx.berth()).pruneImages({ ...(argv.dryRun ? { dryRun: true } : {}), snapshots, ...(snapshots ? { buildCache: true } : {}), signal: ctx.signal });
      const verb = argv.dryRun ? 'Would delete' : 'Deleted';
      for (const d of r.images) ctx.out(`${verb} image: ${d}`);
      if (r.buildCache) printBuildCache(ctx, verb, r.buildCache);
      for (const d of r.removed) ctx.out(`${verb}: ${d}`);
      for (const s of r.snapshots) ctx.out(`Deleted snapshot: ${s}`);
      ctx.out(`Total reclaimed space: ${size(r.reclaimed)}`);
    },
  });
}

/** docker's "Deleted build cache objects:" block, and the mounts a running build kept. */
export function printBuildCache(ctx: { out(text: string): void }, verb: string, b: { records: number; mounts: readonly string[]; held: readonly string[] }): void {
  if (b.records > 0 || b.mounts.length > 0) {
    ctx.out(`${verb} build cache objects: ${b.records} step records, ${b.mounts.length} cache mounts`);
    for (const m of b.mounts) ctx.out(`  ${m}`);
  }
  if (b.held.length > 0) ctx.out(`Kept ${b.held.length} cache mounts a running build holds`);
}

export const pruneCommand = makePrune(false);
export default pruneCommand;
