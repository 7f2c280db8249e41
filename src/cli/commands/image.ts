import type { BerthCommand, BerthGroup } from '../command.js';
import historyCommand from './history.js';
import imagesCommand from './images.js';
import inspectCommand from './inspect.js';
import pruneCommand from './prune.js';
import rmiCommand from './rmi.js';
import tagCommand from './tag.js';

/** `berth image ls|rm|prune|inspect|history|tag`: the top-level verbs under docker's group names. */
const group: BerthGroup = {
  command: 'image',
  describe: 'Manage images',
  subcommands: [
    { ...(imagesCommand as BerthCommand<any>), command: ['ls [repository]', 'list [repository]'] },
    { ...(rmiCommand as BerthCommand<any>), command: ['rm <images..>', 'rmi <images..>'] },
    pruneCommand,
    inspectCommand,
    historyCommand,
    tagCommand,
  ],
};
export default group;
