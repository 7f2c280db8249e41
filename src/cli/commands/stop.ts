import { BerthError } from '../../index.js';
import { defineCommand } from '../command.js';

export default defineCommand<{ containers: string[]; time?: number; signal?: string }>({
  command: 'stop <containers..>',
  describe: 'Stop running containers (the stop signal, then SIGKILL after a grace period)',
  builder: (y) =>
    y
      .positional('containers', { type: 'string', array: true, demandOption: true })
      .option('time', { alias: 't', type: 'number', describe: 'Seconds to wait before killing (default 10)' })
      .option('signal', { alias: 's', type: 'string', describe: 'Signal to send first (default: the image StopSignal or SIGTERM)' }),
  async run(argv, ctx) {
    if (argv.time !== undefined && !Number.isFinite(argv.time)) throw new BerthError('INVALID_ARGUMENT', 'invalid --time', { hint: 'give a number of seconds' });
    const berth = await ctx.berth();
    let failed: unknown;
    await Promise.all(
      argv.containers.map(async (c) => {
        try {
          const handle = await berth.container(c);
          try {
            await handle.stop({ ...(argv.time !== undefined ? { timeout: argv.time } : {}), ...(argv.signal ? { stopSignal: argv.signal } : {}) });
          } catch (e) {
            // Found a moment ago and gone now: an --rm container that ended and was removed.
            if (!(e instanceof BerthError && e.code === 'NOT_FOUND')) throw e;
          }
          ctx.out(c);
        } catch (e) {
          failed ??= e;
        }
      }),
    );
    if (failed) throw failed;
  },
});
