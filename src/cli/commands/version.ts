import { readFile } from 'node:fs/promises';
import { defineCommand } from '../command.js';

export async function berthVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export default defineCommand<{ format?: string }>({
  command: 'version',
  describe: 'Show berth, Node and runtime versions',
  builder: (y) => y.option('format', { type: 'string', choices: ['text', 'json'] }),
  async run(argv, ctx) {
    const v = await (await ctx.berth()).versions({ signal: ctx.signal });
    if (argv.format === 'json') return ctx.json(v);
    ctx.out(`berth version ${v.berth}\nNode ${v.node}\nrunc ${v.runc ?? 'not found'}\nbuildctl ${v.buildctl ?? 'not found'}`);
  },
});
