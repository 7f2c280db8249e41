/**
 * The command table: names and one-line descriptions are here so `berth --help` needs no
 * command module; the module of the verb being run is imported on demand.
 */
export interface CommandEntry {
  name: string;
  aliases?: readonly string[];
  describe: string;
  load: () => Promise<{ default: import('../command.js').BerthCommand<any> | import('../command.js').BerthGroup }>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'images', aliases: ['image ls'], describe: 'List images in the store', load: () => import('./images.js') },
  { name: 'image', describe: 'Manage images (ls, prune, rm, inspect, history, tag)', load: () => import('./image.js') },
  { name: 'tag', describe: 'Create a tag TARGET that refers to SOURCE', load: () => import('./tag.js') },
  { name: 'rmi', describe: 'Remove one or more images', load: () => import('./rmi.js') },
  { name: 'inspect', describe: 'Show the image config and manifest as JSON', load: () => import('./inspect.js') },
  { name: 'history', describe: 'Show the history of an image', load: () => import('./history.js') },
  { name: 'system', describe: 'Manage the store (df, check, prune, info)', load: () => import('./system.js') },
  { name: 'info', describe: 'Show the root, store statistics and runtime versions', load: () => import('./info.js') },
  { name: 'version', describe: 'Show berth, Node and runtime versions', load: () => import('./version.js') },
  { name: 'completion', describe: 'Print a bash/zsh completion script', load: () => import('./completion.js') },
];
