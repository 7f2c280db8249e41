import { checkStore, diskUsage } from '../../system.js';
import { BerthError } from '../../errors.js';
import { defineCommand, type BerthGroup } from '../command.js';
import { size, table } from '../format.js';
import infoCommand from './info.js';
import { makePrune } from './prune.js';

const df = defineCommand<{ format?: string }>({
  command: 'df',
  describe: 'Show disk usage of images, containers, snapshots and caches',
  builder: (y) => y.option('format', { type: 'string', choices: ['table', 'json'] }),
  async run(argv, ctx) {
    const u = await diskUsage(await ctx.store());
    if (argv.format === 'json') return ctx.json(u);
    ctx.out(
      table(
        ['TYPE', 'TOTAL', 'SIZE', 'RECLAIMABLE'],
        [
          ['Images', String(u.images.count), size(u.images.size), size(u.images.reclaimable)],
          ['Containers', String(u.containers.count), size(u.containers.size), ''],
          ['Snapshots', '', size(u.snapshots.size), ''],
          ['Ingest', '', size(u.ingest.size), ''],
          ['Build Cache', '', size(u.buildCache.size), ''],
        ],
      ),
    );
  },
});

const checkCmd = defineCommand<{ format?: string }>({
  command: 'check',
  describe: 'Re-hash every blob and check that every image is whole',
  builder: (y) => y.option('format', { type: 'string', choices: ['text', 'json'] }),
  async run(argv, ctx) {
    const r = await checkStore(await ctx.store(), { signal: ctx.signal });
    if (argv.format === 'json') ctx.json(r);
    else {
      for (const p of r.problems) ctx.out(`${p.digest ?? p.path}: ${p.problem}`);
      ctx.out(`checked ${r.blobs} blobs (${size(r.bytes)}) and ${r.images} images: ${r.problems.length === 0 ? 'no problems' : `${r.problems.length} problem(s)`}`);
    }
    if (r.problems.length > 0) {
      const first = r.problems[0]!;
      throw new BerthError('DIGEST_MISMATCH', `store check found ${r.problems.length} problem(s), first: ${first.digest ?? first.path}: ${first.problem}`, {
        hint: 'remove the affected images (berth rmi) and pull or load them again, then berth image prune',
      });
    }
  },
});

const group: BerthGroup = { command: 'system', describe: 'Manage the store', subcommands: [df, checkCmd, makePrune(true), infoCommand] };
export default group;
