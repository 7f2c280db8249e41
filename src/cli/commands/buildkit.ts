import { defineCommand, type BerthGroup } from '../command.js';

const stop = defineCommand({
  command: 'stop',
  describe: 'Stop the private buildkitd berth keeps for this root (--keep-buildkitd)',
  async run(_argv, ctx) {
    const stopped = await (await ctx.berth()).stopBuildkit();
    ctx.out(stopped ? 'stopped buildkitd' : 'no buildkitd of berth runs for this root');
  },
});

const group: BerthGroup = { command: 'buildkit', describe: "Manage berth's private buildkitd (stop)", subcommands: [stop] };
export default group;
