import { defineCommand } from '../command.js';

export default defineCommand<{ server?: string }>({
  command: 'logout [server]',
  describe: 'Remove stored credentials for a registry',
  builder: (y) => y.positional('server', { type: 'string', describe: 'Registry host (default docker.io)' }),
  async run(argv, ctx) {
    const r = await (await ctx.berth()).logout(argv.server ?? 'docker.io');
    if (r.removed) ctx.out(`Removing login credentials for ${r.domain}`);
    else ctx.warn(`not logged in to ${r.domain}`);
  },
});
