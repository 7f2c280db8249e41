import type { Argv } from 'yargs';
import { defineCommand } from '../command.js';

/** --insecure-registry and --ca, shared by pull, push and login. */
export function registryFlags<T>(y: Argv<T>) {
  return y
    .option('insecure-registry', { type: 'string', describe: 'Allow plain HTTP to this registry host (repeatable)' })
    .option('ca', { type: 'string', describe: 'Trust this PEM CA file for registry TLS (repeatable; SSL_CERT_FILE too)' });
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

export function registryOptions(argv: { insecureRegistry?: string | string[]; ca?: string | string[] }) {
  return { insecureRegistries: list(argv.insecureRegistry), caFiles: list(argv.ca) };
}

export default defineCommand<{ name: string; platform?: string; allPlatforms?: boolean; maxConcurrent?: number; quiet?: boolean; insecureRegistry?: string | string[]; ca?: string | string[] }>({
  command: 'pull <name>',
  describe: 'Download an image from a registry',
  builder: (y) =>
    registryFlags(
      y
        .positional('name', { type: 'string', demandOption: true, describe: 'NAME[:TAG|@DIGEST]' })
        .option('platform', { type: 'string', describe: 'Platform to pull from an index (default: this host)' })
        .option('all-platforms', { alias: 'a', type: 'boolean', describe: 'Pull every platform of an index' })
        .option('max-concurrent', { type: 'number', default: 4, describe: 'Blobs downloaded at once' })
        .option('quiet', { alias: 'q', type: 'boolean', describe: 'Print only the image name' }),
    ),
  async run(argv, ctx) {
    const n = argv.maxConcurrent ?? 4;
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      const { BerthError } = await import('../../index.js');
      throw new BerthError('INVALID_ARGUMENT', `--max-concurrent must be an integer from 1 to 64, not ${argv.maxConcurrent}`);
    }
    const berth = await ctx.berth();
    const p = ctx.progress('pull');
    try {
      const r = await berth.pull(argv.name, {
        ...registryOptions(argv),
        ...(argv.platform ? { platform: argv.platform } : {}),
        ...(argv.allPlatforms ? { allPlatforms: true } : {}),
        concurrency: n,
        signal: ctx.signal,
        onProgress: argv.quiet ? () => {} : p.onProgress,
      });
      p.done();
      if (argv.quiet) ctx.out(r.name);
      else ctx.out(`Digest: ${r.root.digest}\nStatus: ${r.copied > 0 ? 'Downloaded newer image' : 'Image is up to date'} for ${r.name}\n${r.name}`);
    } catch (e) {
      p.done();
      throw e;
    }
  },
});
