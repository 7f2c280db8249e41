import { defineCommand } from '../command.js';

export default defineCommand<{ containers: string[]; signal?: string }>({
  command: 'kill <containers..>',
  describe: 'Send a signal to running containers (default SIGKILL)',
  builder: (y) =>
    y.positional('containers', { type: 'string', array: true, demandOption: true }).option('signal', { alias: 's', type: 'string', default: 'KILL', describe: 'Signal name or number' }),
  async run(argv, ctx) {
    const berth = await ctx.berth();
    for (const c of argv.containers) {
      await (await berth.container(c)).kill(argv.signal ?? 'KILL');
      ctx.out(c);
    }
  },
});
