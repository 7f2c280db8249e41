import { getImage } from '../../store/images.js';
import { defineCommand } from '../command.js';
import { ago, shortId, size, table } from '../format.js';

export const historyCommand = defineCommand<{ image: string; noTrunc?: boolean; quiet?: boolean; format?: string }>({
  command: 'history <image>',
  describe: 'Show the history of an image',
  builder: (y) =>
    y
      .positional('image', { type: 'string', demandOption: true })
      .option('no-trunc', { type: 'boolean' })
      .option('quiet', { alias: 'q', type: 'boolean' })
      .option('format', { type: 'string', choices: ['table', 'json'] }),
  async run(argv, ctx) {
    const store = await ctx.store();
    const v = await getImage(store, argv.image);
    const layers = [...v.manifest.layers];
    const rows = (v.config.history ?? []).map((h) => {
      const layer = h.empty_layer ? undefined : layers.shift();
      return { created: h.created, createdBy: h.created_by ?? '', size: layer?.size ?? 0, layer: layer?.digest, comment: h.comment ?? '' };
    });
    rows.reverse();
    if (argv.format === 'json') return ctx.json(rows);
    if (argv.quiet) return ctx.out(rows.map(() => shortId(v.configDesc.digest)).join('\n'));
    const trunc = (s: string) => (argv.noTrunc || s.length <= 45 ? s : s.slice(0, 44) + '…');
    ctx.out(
      table(
        ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
        rows.map((r, i) => [i === 0 ? shortId(v.configDesc.digest) : '<missing>', ago(r.created), trunc(r.createdBy), size(r.size), r.comment]),
      ),
    );
  },
});
export default historyCommand;
