import { findImage, tagImage } from '../../store/images.js';
import { parseReference } from '../../oci/reference.js';
import { defineCommand } from '../command.js';

export default defineCommand<{ source: string; target: string }>({
  command: 'tag <source> <target>',
  describe: 'Create a tag TARGET that refers to SOURCE',
  builder: (y) => y.positional('source', { type: 'string', demandOption: true }).positional('target', { type: 'string', demandOption: true }),
  async run(argv, ctx) {
    const store = await ctx.store();
    parseReference(argv.target); // validate before touching anything
    const { desc } = await findImage(store, argv.source);
    await tagImage(store, argv.target, desc);
  },
});
