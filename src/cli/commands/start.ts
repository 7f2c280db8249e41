import { defineCommand } from '../command.js';

export default defineCommand<{ containers: string[] }>({
  command: 'start <containers..>',
  describe: 'Start stopped containers (detached)',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }),
  async run(argv, ctx) {
    const berth = await ctx.berth();
    for (const c of argv.containers) {
      await (await berth.container(c)).start();
      ctx.out(c);
    }
  },
});
