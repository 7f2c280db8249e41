import { listImageSummaries } from '../../store/images.js';
import { parseReference, repositoryName } from '../../oci/reference.js';
import { defineCommand } from '../command.js';
import { ago, shortId, size, table } from '../format.js';

export interface ImagesArgs {
  repository?: string;
  quiet?: boolean;
  digests?: boolean;
  noTrunc?: boolean;
  format?: string;
}

export const imagesCommand = defineCommand<ImagesArgs>({
  command: ['images [repository]', 'ls [repository]'],
  describe: 'List images in the store',
  builder: (y) =>
    y
      .positional('repository', { type: 'string', describe: 'Only this repository (name or name:tag)' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'Only show image IDs' })
      .option('digests', { type: 'boolean', describe: 'Show digests' })
      .option('no-trunc', { type: 'boolean', describe: 'Do not truncate output' })
      .option('format', { type: 'string', choices: ['table', 'json'], describe: 'Output format' }),
  async run(argv, ctx) {
    const store = await ctx.store();
    let rows = await listImageSummaries(store);
    if (argv.repository) {
      const ref = parseReference(argv.repository, { defaultTag: false });
      const repo = repositoryName(ref);
      rows = rows.filter((r) => r.name.startsWith(repo + ':') && (ref.tag === undefined || r.tag === ref.tag));
    }
    rows.sort((a, b) => (b.created ?? '').localeCompare(a.created ?? '') || a.name.localeCompare(b.name));
    const id = (d: string | undefined) => (argv.noTrunc ? (d ?? '<none>') : shortId(d));
    if (argv.format === 'json') {
      ctx.json(rows);
      return;
    }
    if (argv.quiet) {
      const seen = new Set<string>();
      for (const r of rows) {
        const v = id(r.id ?? r.digest);
        if (!seen.has(v)) ctx.out(v);
        seen.add(v);
      }
      return;
    }
    const header = ['REPOSITORY', 'TAG', ...(argv.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
    ctx.out(table(header, rows.map((r) => [r.repository, r.tag, ...(argv.digests ? [r.digest] : []), id(r.id ?? r.digest), ago(r.created), size(r.size)])));
  },
});

export default imagesCommand;
