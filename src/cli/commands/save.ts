import { BerthError } from '../../index.js';
import { defineCommand } from '../command.js';

export default defineCommand<{ images: string[]; output?: string; format?: string; platform?: string; compress?: boolean; compressionFormat?: 'gzip' | 'zstd'; compressionLevel?: number }>({
  command: 'save <images..>',
  describe: 'Save images to a tar archive (stdout by default)',
  builder: (y) =>
    y
      .positional('images', { type: 'string', array: true, demandOption: true })
      .option('output', { alias: 'o', type: 'string', describe: 'Write to this file instead of stdout' })
      .option('format', { type: 'string', choices: ['docker', 'oci'], default: 'docker', describe: 'docker: docker-save dual format (loads in docker, ctr, podman, skopeo); oci: oci-archive' })
      .option('platform', { type: 'string', describe: 'Save only this platform of multi-platform images' })
      .option('compress', { type: 'boolean', describe: 'Compress uncompressed layers (kept in the store for the next save or push)' })
      .option('compression-format', { choices: ['gzip', 'zstd'] as const, default: 'gzip' as const, describe: 'With --compress' })
      .option('compression-level', { type: 'number', describe: 'With --compress: gzip 1-9, zstd 1-19' }),
  async run(argv, ctx) {
    if (!argv.output && process.stdout.isTTY) {
      throw new BerthError('INVALID_ARGUMENT', 'refusing to write an archive to a terminal', { hint: 'use -o FILE or redirect standard output' });
    }
    const level = argv.compressionLevel;
    if (level !== undefined && (!Number.isInteger(level) || level < 1 || level > (argv.compressionFormat === 'zstd' ? 19 : 9))) {
      throw new BerthError('INVALID_ARGUMENT', `--compression-level ${level} is out of range for ${argv.compressionFormat ?? 'gzip'}`, { hint: argv.compressionFormat === 'zstd' ? 'give 1 to 19' : 'give 1 to 9' });
    }
    const berth = await ctx.berth();
    const p = ctx.progress('save');
    try {
      await berth.save(argv.images, argv.output && argv.output !== '-' ? argv.output : process.stdout, {
        signal: ctx.signal,
        onProgress: p.onProgress,
        format: argv.format as 'docker' | 'oci',
        ...(argv.platform ? { platform: argv.platform } : {}),
        ...(argv.compress ? { compress: argv.compressionFormat ?? 'gzip', ...(level !== undefined ? { compressionLevel: level } : {}) } : {}),
      });
      p.done();
    } catch (e) {
      p.done(false);
      throw e;
    }
  },
});
