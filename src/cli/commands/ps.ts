import { defineCommand } from '../command.js';
import type { CliContext } from '../context.js';

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
export async function listContainers(argv: { all?: boolean; quiet?: boolean; format?: string; trunc?: boolean }, ctx: CliContext): Promise<void> {
  const noTrunc = argv.trunc === false;
  const { Containers } = await import('../../run/containers.js');
  const containers = await Containers.open(ctx.rootPath);
  const list = (await containers.list()).filter((c) => argv.all || c.status === 'running');
  const rows = list.map((c) => {
    const status =
      c.status === 'running'
        ? `Up ${since(c.state.startedAt)}`
        : c.status === 'exited'
          ? `Exited (${c.state.exitCode ?? 0}) ${ago(c.state.finishedAt)}`
          : c.status === 'dead'
            ? 'Dead'
            : 'Created';
    return {
      ID: c.record.id,
      Names: c.record.name,
      Image: c.record.image.name ?? c.record.image.ref,
      Command: c.record.args.join(' '),
      CreatedAt: c.record.created,
      State: c.status,
      Status: status,
      ExitCode: c.state.exitCode ?? null,
      Pid: c.status === 'running' ? (c.state.pid ?? null) : null,
    };
  });
  if (argv.quiet) {
    for (const r of rows) ctx.out(noTrunc ? r.ID : r.ID.slice(0, 12));
    return;
  }
  if (argv.format === 'json') {
    // one JSON object per line, like docker ps --format json
    for (const r of rows) ctx.out(JSON.stringify(r));
    return;
  }
  const table = [['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'NAMES']];
  for (const r of rows) {
    const cmd = JSON.stringify(noTrunc ? r.Command : r.Command.length > 20 ? r.Command.slice(0, 19) + '…' : r.Command);
    table.push([noTrunc ? r.ID : r.ID.slice(0, 12), r.Image, cmd, ago(r.CreatedAt), r.Status, r.Names]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  ctx.out(table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')).join('\n'));
}

export const psBuilder = (y: any) =>
  y
    .option('all', { alias: 'a', type: 'boolean', describe: 'Show all containers (default: running ones)' })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'Only ids' })
    // yargs reads --no-trunc as trunc=false
    .option('trunc', { type: 'boolean', default: true, describe: 'Truncate ids and commands (--no-trunc: full)' })
    .option('format', { type: 'string', choices: ['table', 'json'], describe: 'Output format' });

export default defineCommand<{ all?: boolean; quiet?: boolean; format?: string; trunc?: boolean }>({
  command: 'ps',
  describe: 'List containers',
  builder: psBuilder,
  async run(argv, ctx) {
    await listContainers(argv, ctx);
  },
});
