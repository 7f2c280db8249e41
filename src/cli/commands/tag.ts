import { defineCommand } from '../command.js';

export default defineCommand<{ source: string; target: string }>({
  command: 'tag <source> <target>',
  describe: 'Create a tag TARGET that refers to SOURCE',
  builder: (y) => y.positional('source', { type: 'string', demandOption: true }).positional('target', { type: 'string', demandOption: true }),
  async run(argv, ctx) {
    await (await ctx.berth()).tag(argv.source, argv.target);
  },
});
