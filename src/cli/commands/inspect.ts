import { defineCommand } from '../command.js';
import { FORMAT_OPTION } from '../format.js';

export const inspectCommand = defineCommand<{ images: string[]; platform?: string; format?: string }>({
  command: 'inspect <images..>',
  describe: "Show images as docker image inspect does (Id, RepoTags, Config, RootFS, …) plus berth's fields",
  builder: (y) =>
    y
      .positional('images', { type: 'string', array: true, demandOption: true })
      .option('platform', { type: 'string', describe: 'Which image of a multi-platform index (os/arch[/variant])' })
      .option('format', { alias: 'f', ...FORMAT_OPTION }),
  async run(argv, ctx) {
    const out = await (await ctx.berth()).inspect(argv.images ?? [], argv.platform ? { platform: argv.platform } : {});
    if (argv.format) {
      // The template engine is loaded only for a --format.
      const { renderValue } = await import('../gotemplate.js');
      ctx.out(out.map((o) => renderValue(argv.format!, o)).join('\n'));
    } else ctx.out(JSON.stringify(out, null, 4));
  },
});
export default inspectCommand;
