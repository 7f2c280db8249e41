import { defineCommand } from '../command.js';

export default defineCommand<{ container: string; format?: string }>({
  command: 'diff <container>',
  describe: "Inspect changes to files on a container's filesystem (A added, C changed, D deleted)",
  builder: (y) =>
    y
      .positional('container', { type: 'string', demandOption: true })
      .option('format', { type: 'string', choices: ['table', 'json'], default: 'table', describe: 'Output format' }),
  async run(argv, ctx) {
    const changes = await (await (await ctx.berth()).container(argv.container)).diff({ signal: ctx.signal });
    if (argv.format === 'json') ctx.json(changes.map((c) => ({ Kind: c.kind, Path: c.path })));
    else if (changes.length > 0) ctx.out(changes.map((c) => `${c.kind} ${c.path}`).join('\n'));
  },
});
