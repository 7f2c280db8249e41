import { defineCommand } from '../command.js';

export default defineCommand<{ containers: string[]; signal?: string }>({
  command: 'kill <containers..>',
  describe: 'Send a signal to running containers (default SIGKILL)',
  builder: (y) =>
    y.positional('containers', { type: 'string', array: true, demandOption: true }).option('signal', { alias: 's', type: 'string', default: 'KILL', describe: 'Signal name or number' }),
  async run(argv, ctx) {
    const { Containers, signalNumber } = await import('../../run/containers.js');
    signalNumber(argv.signal ?? 'KILL');
    const containers = await Containers.open(ctx.rootPath);
    for (const c of argv.containers) {
      const id = await containers.find(c);
      await containers.kill(id, argv.signal ?? 'KILL');
      ctx.out(c);
    }
  },
});
