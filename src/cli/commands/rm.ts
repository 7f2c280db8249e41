import { defineCommand } from '../command.js';

export default defineCommand<{ containers: string[]; force?: boolean }>({
  command: 'rm <containers..>',
  describe: 'Remove containers (with -f, running ones and stale leftovers too)',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }).option('force', { alias: 'f', type: 'boolean', describe: 'Kill a running container, clean up stale state' }),
  async run(argv, ctx) {
    const { Containers } = await import('../../run/containers.js');
    const containers = await Containers.open(ctx.rootPath);
    let failed: unknown;
    for (const c of argv.containers) {
      try {
        const id = await containers.find(c);
        await containers.remove(id, { force: !!argv.force });
        ctx.out(c);
      } catch (e) {
        failed ??= e;
      }
    }
    if (failed) throw failed;
  },
});
