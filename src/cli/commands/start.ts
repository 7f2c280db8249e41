import { defineCommand } from '../command.js';

export default defineCommand<{ containers: string[] }>({
  command: 'start <containers..>',
  describe: 'Start stopped containers (detached)',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }),
  async run(argv, ctx) {
    const { Containers } = await import('../../run/containers.js');
    const containers = await Containers.open(ctx.rootPath);
    for (const c of argv.containers) {
      const id = await containers.find(c);
      await containers.startDetached(id);
      ctx.out(c);
    }
  },
});
