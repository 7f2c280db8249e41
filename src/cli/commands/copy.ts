import { defineCommand } from '../command.js';
import { registryFlags, registryOptions } from './pull.js';
import { size } from '../format.js';


export default defineCommand<{
  source: string;
  destination: string;
  platform?: string;
  allPlatforms?: boolean;
  maxConcurrent?: number;
  quiet?: boolean;
  format?: string;
  containerdAddress?: string;
  unpack?: boolean;
  snapshotter?: string;
  insecureRegistry?: string | string[];
  ca?: string | string[];
}>({
  command: 'copy <source> <destination>',
  describe: 'Copy an image between registries, archives, OCI layouts, containerd and the store',
  builder: (y) =>
    registryFlags(
      y
        .positional('source', { type: 'string', demandOption: true, describe: 'docker://REF, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF], containerd:[NS/]REF, berth:REF or REF' })
        .positional('destination', { type: 'string', demandOption: true, describe: 'same forms as SOURCE' })
        .option('platform', { type: 'string', describe: 'Platform to copy from an index (default: this host)' })
        .option('all-platforms', { alias: 'a', type: 'boolean', describe: 'Copy every platform of an index' })
        .option('max-concurrent', { type: 'number', default: 4, describe: 'Blobs transferred at once' })
        .option('containerd-address', { type: 'string', describe: 'containerd socket (default: $CONTAINERD_ADDRESS, else /run/containerd/containerd.sock)' })
        .option('unpack', { type: 'boolean', describe: 'Into containerd: unpack the image for the snapshotter so the first start does not pay it' })
        .option('snapshotter', { type: 'string', default: 'overlayfs', describe: 'Snapshotter to unpack for (with --unpack)' })
        .option('format', { type: 'string', choices: ['text', 'json'], default: 'text', describe: 'Summary as text or JSON' })
        .option('quiet', { alias: 'q', type: 'boolean', describe: 'Print only the digest' }),
    ),
  async run(argv, ctx) {
    const { BerthError } = await import('../../index.js');
    const n = argv.maxConcurrent ?? 4;
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new BerthError('INVALID_ARGUMENT', `--max-concurrent must be an integer from 1 to 64, not ${argv.maxConcurrent}`);
    const berth = await ctx.berth();
    const p = ctx.progress('copy');
    try {
      const r = await berth.copy(argv.source, argv.destination, {
        ...registryOptions(argv),
        ...(argv.platform ? { platform: argv.platform } : {}),
        ...(argv.allPlatforms ? { allPlatforms: true } : {}),
        ...(argv.containerdAddress ? { containerdAddress: argv.containerdAddress } : {}),
        ...(argv.unpack ? { unpack: argv.snapshotter ?? 'overlayfs' } : {}),
        concurrency: n,
        signal: ctx.signal,
        onProgress: argv.quiet ? () => {} : p.onProgress,
      });
      p.done();
      if (argv.format === 'json') return ctx.json({ name: r.name ?? null, digest: r.root.digest, mediaType: r.root.mediaType, sent: r.sent, existing: r.existing, resumedBytes: r.resumedBytes, verified: r.verified, ...(r.unpacked ? { unpacked: r.unpacked } : {}) });
      if (argv.quiet) return ctx.out(r.root.digest);
      const resumed = r.resumedBytes ? ` (${size(r.resumedBytes)} kept from an interrupted copy)` : '';
      ctx.out(
        `Copied ${r.name ?? r.root.digest} to ${argv.destination}: digest ${r.root.digest}\n` +
          `Sent ${r.sent.blobs} blob${r.sent.blobs === 1 ? '' : 's'} (${size(r.sent.bytes)})${resumed}, ${r.existing.blobs} already there (${size(r.existing.bytes)})${r.verified ? '; verified' : ''}` +
          (r.unpacked ? `\nUnpacked for ${r.unpacked.snapshotter}: ${r.unpacked.applied} layer${r.unpacked.applied === 1 ? '' : 's'} applied, top snapshot ${r.unpacked.chainId}` : ''),
      );
    } catch (e) {
      p.done();
      throw e;
    }
  },
});
