import { defineCommand } from '../command.js';

export default defineCommand<{ containers: string[] }>({
  command: 'wait <containers..>',
  describe: 'Wait for containers to stop and print their exit codes',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }),
  async run(argv, ctx) {
    const berth = await ctx.berth();
    for (const c of argv.containers) {
      ctx.out(String(await (await berth.container(c)).wait({ signal: ctx.signal })));
    }
  },
});
