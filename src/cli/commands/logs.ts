import { BerthError } from '../../index.js';
import { defineCommand } from '../command.js';

export default defineCommand<{ container: string; follow?: boolean; tail?: string; timestamps?: boolean }>({
  command: 'logs <container>',
  describe: 'Show the output of a container',
  builder: (y) =>
    y
      .positional('container', { type: 'string', demandOption: true })
      .option('follow', { alias: 'f', type: 'boolean', describe: 'Follow the output until the container stops' })
      .option('tail', { alias: 'n', type: 'string', describe: 'Number of lines from the end (or all)' })
      .option('timestamps', { alias: 't', type: 'boolean', describe: 'Prefix each line with its time' }),
  async run(argv, ctx) {
    let tail: number | undefined;
    if (argv.tail !== undefined && argv.tail !== 'all') {
      tail = Number(argv.tail);
      if (!Number.isInteger(tail)) throw new BerthError('INVALID_ARGUMENT', `invalid --tail ${JSON.stringify(argv.tail)}`, { hint: 'give a number or all' });
    }
    const handle = await (await ctx.berth()).container(argv.container);
    process.stdout.on('error', () => {});
    for await (const e of handle.logs({ follow: !!argv.follow, ...(tail !== undefined ? { tail } : {}), signal: ctx.signal })) {
      const text = argv.timestamps ? `${e.time} ${e.log}` : e.log;
      (e.stream === 'stderr' ? process.stderr : process.stdout).write(text);
    }
  },
});
