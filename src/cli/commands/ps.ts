import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';
import { defaultTable, dockerTime, FORMAT_OPTION, size, tableTemplate } from '../format.js';

function ago(iso: string | undefined): string {
  if (!iso) return '';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)} seconds ago`.replace(/^1 seconds/, '1 second').replace(/^0 seconds ago/, 'Less than a second ago');
  if (s < 3600) return `${Math.floor(s / 60)} minutes ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} hours ago`;
  return `${Math.floor(s / 86400)} days ago`;
}

function since(iso: string | undefined): string {
  return ago(iso).replace(/ ago$/, '');
}

/** `ps` and `container ls`. */
export async function listContainers(argv: { all?: boolean; quiet?: boolean; format?: string; trunc?: boolean; size?: boolean }, ctx: CliContext): Promise<void> {
  const noTrunc = argv.trunc === false;
  const berth = await ctx.berth();
  const list = (await berth.containers()).filter((c) => argv.all || c.status === 'running');
  let sizes: Map<string, { rw: number; rootFs: number }> | undefined;
  if (argv.size || /\.Size\b/.test(argv.format ?? '')) {
    sizes = await berth.containerSizes();
  }
  const rows = list.map((c) => {
    const status =
      c.status === 'running'
        ? `Up ${since(c.state.startedAt)}`
        : c.status === 'exited'
          ? `Exited (${c.state.exitCode ?? 0}) ${ago(c.state.finishedAt)}`
          : c.status === 'dead'
            ? 'Dead'
            : 'Created';
    const cmd = c.record.args.join(' ');
    const sz = sizes?.get(c.record.id);
    return {
      ID: noTrunc ? c.record.id : c.record.id.slice(0, 12),
      Image: c.image,
      Command: JSON.stringify(noTrunc || cmd.length <= 20 ? cmd : cmd.slice(0, 19) + '…'),
      CreatedAt: dockerTime(c.record.created),
      RunningFor: ago(c.record.created),
      Ports: '',
      State: c.status,
      Status: status,
      Size: sz ? `${size(sz.rw)} (virtual ${size(sz.rootFs)})` : '',
      Names: c.record.name,
      Labels: '',
      Mounts: '',
      Networks: '',
      // berth's
      ExitCode: c.state.exitCode ?? null,
      Pid: c.status === 'running' ? (c.state.pid ?? null) : null,
    };
  });
  if (argv.quiet) {
    if (rows.length) ctx.out(rows.map((r) => r.ID).join('\n'));
    return;
  }
  const columns = ['ID', 'Image', 'Command', 'RunningFor', 'Status', 'Ports', 'Names', ...(argv.size ? ['Size'] : [])];
  const headers = { ID: 'CONTAINER ID', RunningFor: 'CREATED', CreatedAt: 'CREATED AT', Names: 'NAMES' };
  // The template engine is loaded only for a --format.
  const text =
    argv.format === undefined
      ? defaultTable(rows, columns, headers)
      : (await import('../gotemplate.js')).renderRows(argv.format, rows, { headers }, tableTemplate(columns));
  if (text) ctx.out(text);
}

export const psBuilder = (y: any) =>
  y
    .option('all', { alias: 'a', type: 'boolean', describe: 'Show all containers (default: running ones)' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'Only ids' })
    // yargs reads --no-trunc as trunc=false
    .option('trunc', { type: 'boolean', default: true, describe: 'Truncate ids and commands (--no-trunc: full)' })
    .option('size', { alias: 's', type: 'boolean', describe: 'Display the writable layer size (and the virtual size with the image)' })
    .option('format', FORMAT_OPTION);

export default defineCommand<{ all?: boolean; quiet?: boolean; format?: string; trunc?: boolean; size?: boolean }>({
  command: 'ps',
  describe: 'List containers',
  builder: psBuilder,
  async run(argv, ctx) {
    await listContainers(argv, ctx);
  },
});
