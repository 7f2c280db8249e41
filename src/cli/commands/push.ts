import { defineCommand } from '../command.js';
import { registryFlags, registryOptions } from './pull.js';

const SIZE_RE = /^(\d+)([kKmMgG]i?[bB]?|[bB])?$/;

function parseSize(s: string | number): number | undefined {
  if (typeof s === 'number') return s;
  const m = SIZE_RE.exec(s.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase()[0];
  return Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1);
}

export default defineCommand<{ name: string; allPlatforms?: boolean; chunkSize?: string; maxConcurrent?: number; quiet?: boolean; insecureRegistry?: string | string[]; ca?: string | string[]; compressionFormat?: 'gzip' | 'zstd' | 'none'; compressionLevel?: number }>({
  command: 'push <name>',
  describe: 'Upload an image to a registry',
  builder: (y) =>
    registryFlags(
      y
        .positional('name', { type: 'string', demandOption: true, describe: 'NAME[:TAG]' })
        .option('all-platforms', { alias: 'a', type: 'boolean', describe: 'Push the whole index, every platform' })
        .option('chunk-size', { type: 'string', describe: 'Upload blobs larger than this in PATCH chunks of this size (e.g. 4MiB; default 64MiB)' })
        .option('max-concurrent', { type: 'number', default: 4, describe: 'Blobs uploaded at once' })
        .option('quiet', { alias: 'q', type: 'boolean', describe: 'Print only the digest' })
        .option('compression-format', { choices: ['gzip', 'zstd', 'none'] as const, default: 'gzip' as const, describe: 'Compress uncompressed layers with this (kept in the store for the next push)' })
        .option('compression-level', { type: 'number', describe: 'gzip 1-9, zstd 1-19' }),
    ),
  async run(argv, ctx) {
    const { BerthError } = await import('../../index.js');
    let chunkSize: number | undefined;
    if (argv.chunkSize !== undefined) {
      chunkSize = parseSize(argv.chunkSize);
      if (chunkSize === undefined || chunkSize < 1024) throw new BerthError('INVALID_ARGUMENT', `invalid --chunk-size ${JSON.stringify(argv.chunkSize)}`, { hint: 'give a size of at least 1KiB, e.g. 4MiB' });
    }
    const n = argv.maxConcurrent ?? 4;
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new BerthError('INVALID_ARGUMENT', `--max-concurrent must be an integer from 1 to 64, not ${argv.maxConcurrent}`);
    const level = argv.compressionLevel;
    const fmt = argv.compressionFormat ?? 'gzip';
    if (level !== undefined && (!Number.isInteger(level) || level < 1 || level > (fmt === 'zstd' ? 19 : 9))) {
      throw new BerthError('INVALID_ARGUMENT', `--compression-level ${level} is out of range for ${fmt}`, { hint: fmt === 'zstd' ? 'give 1 to 19' : 'give 1 to 9' });
    }
    const berth = await ctx.berth();
    const p = ctx.progress('push');
    try {
      const r = await berth.push(argv.name, {
        ...registryOptions(argv),
        ...(argv.allPlatforms ? { allPlatforms: true } : {}),
        ...(chunkSize ? { chunkSize } : {}),
        concurrency: n,
        compression: fmt,
        ...(level !== undefined ? { compressionLevel: level } : {}),
        signal: ctx.signal,
        onProgress: argv.quiet ? () => {} : p.onProgress,
      });
      p.done();
      ctx.out(argv.quiet ? r.digest : `${r.name}: digest: ${r.digest} size: ${r.root.size}`);
    } catch (e) {
      p.done(false);
      throw e;
    }
  },
});
