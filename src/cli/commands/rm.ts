import { defineCommand } from '../command.js';

export default defineCommand<{ containers: string[]; force?: boolean }>({
  command: 'rm <containers..>',
  describe: 'Remove containers (with -f, running ones and stale leftovers too)',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }).option('force', { alias: 'f', type: 'boolean', describe: 'Kill a running container, clean up stale state' }),
  async run(argv, ctx) {
    const berth = await ctx.berth();
    let failed: unknown;
    for (const c of argv.containers) {
      try {
        await (await berth.container(c)).remove({ force: !!argv.force });
        ctx.out(c);
      } catch (e) {
        failed ??= e;
      }
    }
    if (failed) throw failed;
  },
});
