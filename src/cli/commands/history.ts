import { defineCommand } from '../command.js';
import { ago, dockerTime, FORMAT_OPTION, shortId, size } from '../format.js';
import { renderRows } from '../gotemplate.js';

export const historyCommand = defineCommand<{ image: string; trunc?: boolean; quiet?: boolean; format?: string; human?: boolean }>({
  command: 'history <image>',
  describe: 'Show the history of an image',
  builder: (y) =>
    y
      .positional('image', { type: 'string', demandOption: true })
      .option('trunc', { type: 'boolean', default: true, describe: 'Truncate ids and commands (--no-trunc: full)' })
      .option('quiet', { alias: 'q', type: 'boolean' })
      .option('human', { alias: 'H', type: 'boolean', default: true, describe: 'Sizes and dates in human-readable form' })
      .option('format', FORMAT_OPTION),
  async run(argv, ctx) {
    const rows = await (await ctx.berth()).history(argv.image);
    const id = (d: string) => (d === '<missing>' || (argv.trunc === false) ? d : shortId(d));
    if (argv.quiet) return ctx.out(rows.map((r) => id(r.ID)).join('\n'));
    const trunc = (s: string) => ((argv.trunc === false) || s.length <= 45 ? s : s.slice(0, 44) + '…');
    const human = argv.human !== false;
    const shown = rows.map((r) => ({
      ID: id(r.ID),
      CreatedSince: human ? ago(r.CreatedAt) : dockerTime(r.CreatedAt),
      CreatedAt: human ? dockerTime(r.CreatedAt) : (r.CreatedAt ?? ''),
      CreatedBy: trunc(r.CreatedBy),
      Size: human ? size(r.Size) : String(r.Size),
      Comment: r.Comment,
    }));
    const def = 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';
    const text = renderRows(argv.format ?? def, shown, { headers: { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedBy: 'CREATED BY' } }, def.slice(6));
    if (text) ctx.out(text);
  },
});
export default historyCommand;
