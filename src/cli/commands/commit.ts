import { defineCommand } from '../command.js';

export default defineCommand<{ container: string; repository?: string; change?: string | string[]; message?: string; author?: string; pause?: boolean }>({
  command: 'commit <container> [repository]',
  describe: "Create a new image from a container's changes",
  builder: (y) =>
    y
      .positional('container', { type: 'string', demandOption: true })
      .positional('repository', { type: 'string', describe: 'NAME[:TAG] for the new image' })
      .option('change', { alias: 'c', type: 'string', describe: 'Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL, ONBUILD)' })
      .option('message', { alias: 'm', type: 'string', describe: 'Commit message' })
      .option('author', { alias: 'a', type: 'string', describe: 'Author (e.g. "John Hannibal Smith <hannibal@a-team.com>")' })
      .option('pause', { alias: 'p', type: 'boolean', default: true, describe: 'Pause the container during commit' }),
  async run(argv, ctx) {
    const epoch = process.env.SOURCE_DATE_EPOCH || undefined;
    const p = ctx.progress('commit');
    try {
      const handle = await (await ctx.berth()).container(argv.container);
      const r = await handle.commit({
        signal: ctx.signal,
        onProgress: p.onProgress,
        changes: ([] as (string | undefined)[]).concat(argv.change as string | string[] | undefined).filter((c): c is string => typeof c === 'string'),
        ...(argv.repository !== undefined ? { name: argv.repository } : {}),
        ...(argv.message !== undefined ? { message: argv.message } : {}),
        ...(argv.author !== undefined ? { author: argv.author } : {}),
        pause: argv.pause !== false,
        ...(epoch !== undefined ? { epoch } : {}),
      });
      p.done();
      ctx.out(r.imageId);
    } catch (e) {
      p.done();
      throw e;
    }
  },
});
