import { BerthError } from '../../index.js';
import { defineCommand } from '../command.js';

export default defineCommand<{ input?: string; dir?: string; quiet?: boolean; platform?: string; allPlatforms?: boolean; format?: string }>({
  command: 'load',
  describe: 'Load images from a docker-save or OCI archive (stdin by default)',
  builder: (y) =>
    y
      .option('input', { alias: 'i', type: 'string', describe: 'Read from this archive file (gzip/zstd compressed or not) instead of stdin' })
      .option('dir', { type: 'string', describe: 'Load from an OCI image layout directory' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'Suppress the progress output' })
      .option('platform', { type: 'string', describe: 'Load only this platform of multi-platform images (os/arch[/variant])' })
      .option('all-platforms', { type: 'boolean', describe: 'Load every platform the archive holds' })
      .option('format', { type: 'string', choices: ['text', 'json'], default: 'text', describe: 'Output format' })
      .conflicts('input', 'dir'),
  async run(argv, ctx) {
    if (!argv.input && !argv.dir && process.stdin.isTTY) {
      throw new BerthError('INVALID_ARGUMENT', 'no archive given and standard input is a terminal', { hint: 'use berth load -i FILE, or pipe an archive in' });
    }
    const berth = await ctx.berth();
    const p = argv.quiet ? undefined : ctx.progress('load');
    try {
      const input = argv.dir ? { dir: argv.dir } : argv.input && argv.input !== '-' ? { path: argv.input } : { stream: process.stdin };
      const r = await berth.load(input, {
        signal: ctx.signal,
        ...(p ? { onProgress: p.onProgress } : {}),
        ...(argv.platform ? { platform: argv.platform } : {}),
        ...(argv.allPlatforms ? { allPlatforms: true } : {}),
        what: argv.dir ?? (argv.input && argv.input !== '-' ? argv.input : 'standard input'),
      });
      p?.done();
      if (argv.format === 'json') {
        ctx.json({
          images: r.images.map((i) => ({ names: i.names, digest: i.root.digest, mediaType: i.root.mediaType, manifests: i.manifests.map((m) => m.digest), ids: i.configs })),
          skipped: r.skipped,
          written: r.written,
          existing: r.existing,
        });
        return;
      }
      for (const s of r.skipped) if (!argv.quiet) ctx.warn(`skipped ${s.digest} (${s.reason})`);
      for (const i of r.images) {
        if (i.names.length === 0) {
          for (const c of i.configs) ctx.out(`Loaded image ID: ${c}`);
          if (!argv.quiet) ctx.warn(`image ${i.root.digest} has no name in the archive: tag it (berth tag ${i.root.digest.slice(7, 19)} NAME) before a prune removes it`);
        }
        for (const n of i.familiarNames) ctx.out(`Loaded image: ${n}`);
      }
    } catch (e) {
      p?.done(false);
      throw e;
    }
  },
});
