import { removeImages } from '../../system.js';
import { defineCommand } from '../command.js';

export const rmiCommand = defineCommand<{ images: string[]; force?: boolean }>({
  command: ['rmi <images..>', 'rm <images..>'],
  describe: 'Remove one or more images (their names; content goes with the next prune)',
  builder: (y) =>
    y.positional('images', { type: 'string', array: true, demandOption: true }).option('force', { alias: 'f', type: 'boolean', describe: 'Remove even when containers use it, and every tag of an id' }),
  async run(argv, ctx) {
    const store = await ctx.store();
    for (const r of await removeImages(store, argv.images ?? [], argv.force ? { force: true } : {})) {
      for (const n of r.untagged) ctx.out(`Untagged: ${n}`);
    }
  },
});
export default rmiCommand;
