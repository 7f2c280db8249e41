import type { BerthGroup } from '../command.js';
import historyCommand from './history.js';
import imagesCommand from './images.js';
import inspectCommand from './inspect.js';
import pruneCommand from './prune.js';
import rmiCommand from './rmi.js';
import tagCommand from './tag.js';

const group: BerthGroup = {
  command: 'image',
  describe: 'Manage images',
  subcommands: [imagesCommand, pruneCommand, rmiCommand, inspectCommand, historyCommand, tagCommand],
};
export default group;
