import { defineCommand } from '../command.js';

export default defineCommand<{ containers: string[] }>({
  command: 'wait <containers..>',
  describe: 'Wait for containers to stop and print their exit codes',
  builder: (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }),
  async run(argv, ctx) {
    const { Containers } = await import('../../run/containers.js');
    const containers = await Containers.open(ctx.rootPath);
    for (const c of argv.containers) {
      const id = await containers.find(c);
      ctx.out(String(await containers.wait(id, { signal: ctx.signal })));
    }
  },
});
