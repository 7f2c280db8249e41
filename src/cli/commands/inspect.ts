import { parsePlatform } from '../../oci/platform.js';
import { getImage } from '../../store/images.js';
import { defineCommand } from '../command.js';

export const inspectCommand = defineCommand<{ images: string[]; platform?: string; format?: string }>({
  command: 'inspect <images..>',
  describe: 'Show the image config and manifest as JSON',
  builder: (y) =>
    y
      .positional('images', { type: 'string', array: true, demandOption: true })
      .option('platform', { type: 'string', describe: 'Which image of a multi-platform index (os/arch[/variant])' })
      .option('format', { type: 'string', choices: ['json'], default: 'json' }),
  async run(argv, ctx) {
    const store = await ctx.store();
    const platform = argv.platform ? parsePlatform(argv.platform) : undefined;
    const out = [];
    for (const name of argv.images ?? []) {
      const v = await getImage(store, name, platform);
      out.push({
        Name: v.name ?? null,
        Id: v.configDesc.digest,
        Digest: v.root.digest,
        ManifestDigest: v.manifestDesc.digest,
        MediaType: v.root.mediaType,
        Created: v.config.created ?? null,
        Os: v.config.os,
        Architecture: v.config.architecture,
        ...(v.config.variant ? { Variant: v.config.variant } : {}),
        Size: v.manifest.layers.reduce((a, l) => a + l.size, 0),
        Config: v.config,
        Manifest: v.manifest,
      });
    }
    ctx.json(out);
  },
});
export default inspectCommand;
