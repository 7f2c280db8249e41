import { BerthError } from '../../index.js';
import type { ImageListOptions, ImageSummary } from '../../index.js';
import { defineCommand } from '../command.js';
import { ago, defaultTable, dockerTime, FORMAT_OPTION, shortId, size, tableTemplate } from '../format.js';

export interface ImagesArgs {
  repository?: string;
  all?: boolean;
  quiet?: boolean;
  digests?: boolean;
  trunc?: boolean;
  format?: string;
  filter?: string[];
}

/** Docker's fields of an `images --format` row (strings as docker prints them). */
export function imageRow(r: ImageSummary, noTrunc = false) {
  return {
    Containers: 'N/A',
    CreatedAt: dockerTime(r.CreatedAt),
    CreatedSince: ago(r.CreatedAt),
    Digest: r.Digest,
    ID: noTrunc ? r.ID : shortId(r.ID),
    Repository: r.Repository,
    SharedSize: 'N/A',
    Size: size(r.Size),
    Tag: r.Tag,
    UniqueSize: 'N/A',
    VirtualSize: size(r.Size),
    // berth's: bytes in the content store (compressed layers as stored)
    ContentSize: size(r.ContentSize),
  };
}

const HEADERS = { ID: 'IMAGE ID', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', ContentSize: 'CONTENT SIZE', VirtualSize: 'VIRTUAL SIZE' };

/** `-f dangling=true`, `-f reference=alpine*` as docker takes them. */
function parseFilters(filters: readonly string[] | undefined, repository?: string): ImageListOptions {
  const o: { dangling?: boolean; reference?: string[] } = {};
  for (const f of filters ?? []) {
    const [k, ...v] = f.split('=');
    const val = v.join('=');
    if (k === 'dangling' && (val === 'true' || val === 'false')) o.dangling = val === 'true';
    else if (k === 'reference' && val) (o.reference ??= []).push(val);
    else throw new BerthError('INVALID_ARGUMENT', `invalid filter ${JSON.stringify(f)}`, { hint: 'use dangling=true|false or reference=NAME[:TAG] (globs allowed)' });
  }
  if (repository) (o.reference ??= []).push(repository);
  return o;
}

export const imagesCommand = defineCommand<ImagesArgs>({
  command: ['images [repository]', 'ls [repository]'],
  describe: 'List images in the store (untagged ones as <none>)',
  builder: (y) =>
    y
      .positional('repository', { type: 'string', describe: 'Only this repository (name or name:tag)' })
      .option('all', { alias: 'a', type: 'boolean', describe: 'Show all images (berth has no intermediate images: the same list)' })
      .option('quiet', { alias: 'q', type: 'boolean', describe: 'Only show image IDs' })
      .option('digests', { type: 'boolean', describe: 'Show digests' })
      .option('trunc', { type: 'boolean', default: true, describe: 'Truncate ids (--no-trunc: full)' })
      .option('filter', { alias: 'f', type: 'string', array: true, describe: 'dangling=true|false, reference=PATTERN' })
      .option('format', FORMAT_OPTION),
  async run(argv, ctx) {
    const rows = await (await ctx.berth()).images(parseFilters(argv.filter, argv.repository));
    const shown = rows.map((r) => imageRow(r, (argv.trunc === false)));
    if (argv.quiet) {
      const ids = [...new Set(shown.map((r) => r.ID))];
      if (ids.length) ctx.out(ids.join('\n'));
      return;
    }
    const columns = ['Repository', 'Tag', ...(argv.digests ? ['Digest'] : []), 'ID', 'CreatedSince', 'Size'];
    // The template engine is loaded only for a --format.
    const text =
      argv.format === undefined
        ? defaultTable(shown, columns, HEADERS)
        : (await import('../gotemplate.js')).renderRows(argv.format, shown, { headers: HEADERS }, tableTemplate(columns));
    if (text) ctx.out(text);
  },
});

export default imagesCommand;
