import { defineCommand } from '../command.js';
import { FORMAT_OPTION, size } from '../format.js';
import { renderValue } from '../gotemplate.js';

export const infoCommand = defineCommand<{ format?: string }>({
  command: 'info',
  describe: 'Show the root, store statistics and runtime versions',
  builder: (y) => y.option('format', { alias: 'f', ...FORMAT_OPTION }),
  async run(argv, ctx) {
    const i = await (await ctx.berth()).info({ signal: ctx.signal });
    if (argv.format === 'json') return ctx.json(i);
    if (argv.format) return ctx.out(renderValue(argv.format, i));
    ctx.out(
      [
        `Root: ${i.root}`,
        `Content store: ${i.store.layout} (OCI image layout)`,
        ` Images: ${i.store.images}`,
        ` Blobs: ${i.store.blobs} (${size(i.store.bytes)})`,
        `Containers: ${i.Containers} (running: ${i.ContainersRunning})`,
        `Snapshotter: ${i.Driver}`,
        `Runtime: runc ${i.runc.found ? i.runc.version : 'not found (apt-get install runc)'}`,
        ...(i.runc.warning ? [` Warning: ${i.runc.warning}`] : []),
        `BuildKit: buildctl ${i.buildctl.found ? i.buildctl.version : 'not found (BuildKit builds need buildctl and a buildkitd)'}`,
        `Platform: ${i.platform}`,
        `Operating System: ${i.OperatingSystem}`,
        `Kernel: ${i.kernel}`,
        `CPUs: ${i.NCPU}, memory: ${size(i.MemTotal)}`,
        `Node: ${i.node}`,
      ].join('\n'),
    );
  },
});
export default infoCommand;
