import { defineCommand } from '../command.js';

export const rmiCommand = defineCommand<{ images: string[]; force?: boolean }>({
  command: ['rmi <images..>', 'rm <images..>'],
  describe: 'Remove one or more images (by name, ID or digest)',
  builder: (y) =>
    y.positional('images', { type: 'string', array: true, demandOption: true }).option('force', { alias: 'f', type: 'boolean', describe: 'Remove even when containers use it, and every tag of an id' }),
  async run(argv, ctx) {
    for (const r of await (await ctx.berth()).removeImages(argv.images ?? [], argv.force ? { force: true } : {})) {
      for (const n of r.untagged) ctx.out(`Untagged: ${n}`);
      for (const d of r.deleted) ctx.out(`Deleted: ${d}`);
    }
  },
});
export default rmiCommand;
