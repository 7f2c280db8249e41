import { BerthError } from '../../index.js';
import { defineCommand, type BerthGroup } from '../command.js';
import { FORMAT_OPTION, size } from '../format.js';
import { renderRows } from '../gotemplate.js';
import infoCommand from './info.js';
import { makePrune } from './prune.js';

const df = defineCommand<{ format?: string }>({
  command: 'df',
  describe: 'Show disk usage of images, containers, snapshots and caches',
  builder: (y) => y.option('format', FORMAT_OPTION),
  async run(argv, ctx) {
    const u = await (await ctx.berth()).diskUsage();
    if (argv.format === 'json') return ctx.json(u);
    const rows = [
      { Type: 'Images', TotalCount: String(u.images.count), Active: '', Size: size(u.images.size), Reclaimable: size(u.images.reclaimable) },
      { Type: 'Containers', TotalCount: String(u.containers.count), Active: '', Size: size(u.containers.size), Reclaimable: '' },
      { Type: 'Snapshots', TotalCount: '', Active: '', Size: size(u.snapshots.size), Reclaimable: '' },
      { Type: 'Ingest', TotalCount: '', Active: '', Size: size(u.ingest.size), Reclaimable: '' },
      { Type: 'Build Cache', TotalCount: String(u.buildCache.count), Active: String(u.buildCache.active), Size: size(u.buildCache.size), Reclaimable: size(u.buildCache.reclaimable) },
    ];
    const def = 'table {{.Type}}\t{{.TotalCount}}\t{{.Size}}\t{{.Reclaimable}}';
    ctx.out(renderRows(argv.format ?? def, rows, { headers: { Type: 'TYPE', TotalCount: 'TOTAL' } }, def.slice(6)));
  },
});

const checkCmd = defineCommand<{ format?: string }>({
  command: 'check',
  describe: 'Re-hash every blob and check that every image is whole',
  builder: (y) => y.option('format', { type: 'string', choices: ['text', 'json'] }),
  async run(argv, ctx) {
    const r = await (await ctx.berth()).check({ signal: ctx.signal });
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
