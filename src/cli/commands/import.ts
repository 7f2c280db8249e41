import { BerthError } from '../../index.js';
import { defineCommand } from '../command.js';

export default defineCommand<{ file: string; reference?: string; change?: string | string[]; message?: string; platform?: string; compress?: boolean; compressionFormat?: 'gzip' | 'zstd'; compressionLevel?: number }>({
  command: 'import <file> [reference]',
  describe: 'Import a root filesystem tarball (- for stdin) as a one-layer image',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'Tarball (plain, gzip or zstd), or - for standard input' })
      .positional('reference', { type: 'string', describe: 'NAME[:TAG] for the image' })
      .option('change', { alias: 'c', type: 'string', describe: 'Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL, ONBUILD)' })
      .option('message', { alias: 'm', type: 'string', describe: 'Commit message in the history' })
      .option('platform', { type: 'string', describe: 'Platform of the image (default: this host)' })
      .option('compress', { type: 'boolean', describe: 'Store a plain tarball compressed (the layer as push would send it)' })
      .option('compression-format', { choices: ['gzip', 'zstd'] as const, default: 'gzip' as const, describe: 'With --compress' })
      .option('compression-level', { type: 'number', describe: 'With --compress: gzip 1-9, zstd 1-19' }),
  async run(argv, ctx) {
    if ((argv.file === '-' || argv.file === '') && process.stdin.isTTY) {
      throw new BerthError('INVALID_ARGUMENT', 'standard input is a terminal', { hint: 'pipe a tarball in, or give a file' });
    }
    const level = argv.compressionLevel;
    if (level !== undefined && (!Number.isInteger(level) || level < 1 || level > (argv.compressionFormat === 'zstd' ? 19 : 9))) {
      throw new BerthError('INVALID_ARGUMENT', `--compression-level ${level} is out of range for ${argv.compressionFormat ?? 'gzip'}`, { hint: argv.compressionFormat === 'zstd' ? 'give 1 to 19' : 'give 1 to 9' });
    }
    const berth = await ctx.berth();
    const p = ctx.progress('import');
    try {
      const r = await berth.import(argv.file === '-' || argv.file === '' ? process.stdin : argv.file, {
        ...(argv.reference !== undefined ? { name: argv.reference } : {}),
        signal: ctx.signal,
        onProgress: p.onProgress,
        changes: ([] as (string | undefined)[]).concat(argv.change as string | string[] | undefined).filter((c): c is string => typeof c === 'string'),
        ...(argv.message !== undefined ? { message: argv.message } : {}),
        ...(argv.platform ? { platform: argv.platform } : {}),
        what: argv.file === '-' || argv.file === '' ? 'standard input' : argv.file,
        ...(argv.compress ? { compress: argv.compressionFormat ?? 'gzip', ...(level !== undefined ? { compressionLevel: level } : {}) } : {}),
      });
      p.done();
      ctx.out(r.config.digest);
    } catch (e) {
      p.done(false);
      throw e;
    }
  },
});
