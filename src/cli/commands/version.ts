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
    const { Buildctl } = await import('../../build/buildctl.js');
    const { Runc } = await import('../../run/runc.js');
    const runc = await new Runc({ root: `${ctx.rootPath}/runc` }).version().catch(() => undefined);
    const v = {
      berth: await berthVersion(),
      node: process.version,
      runc: runc?.version ?? null,
      buildctl: (await new Buildctl().version(ctx.signal)) ?? null,
    };
    if (argv.format === 'json') return ctx.json(v);
    ctx.out(`berth version ${v.berth}\nNode ${v.node}\nrunc ${v.runc ?? 'not found'}\nbuildctl ${v.buildctl ?? 'not found'}`);
  },
});
