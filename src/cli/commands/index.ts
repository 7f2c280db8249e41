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
  { name: 'load', describe: 'Load images from a docker-save or OCI archive', load: () => import('./load.js') },
  { name: 'save', describe: 'Save images to a docker-save or OCI archive', load: () => import('./save.js') },
  { name: 'import', describe: 'Import a root filesystem tarball as an image', load: () => import('./import.js') },
  { name: 'build', describe: 'Build an image from a Dockerfile', load: () => import('./build.js') },
  { name: 'builder', describe: 'Manage the build cache (prune)', load: () => import('./builder.js') },
  { name: 'buildkit', describe: "Manage berth's private buildkitd (stop)", load: () => import('./buildkit.js') },
  { name: 'pull', describe: 'Download an image from a registry', load: () => import('./pull.js') },
  { name: 'push', describe: 'Upload an image to a registry', load: () => import('./push.js') },
  { name: 'copy', describe: 'Copy an image between registries, archives, OCI layouts, containerd and the store', load: () => import('./copy.js') },
  { name: 'login', describe: 'Log in to a registry', load: () => import('./login.js') },
  { name: 'logout', describe: 'Log out from a registry', load: () => import('./logout.js') },
  { name: 'system', describe: 'Manage the store (df, check, prune, info)', load: () => import('./system.js') },
  { name: 'info', describe: 'Show the root, store statistics and runtime versions', load: () => import('./info.js') },
  { name: 'version', describe: 'Show berth, Node and runtime versions', load: () => import('./version.js') },
  { name: 'completion', describe: 'Print a bash/zsh completion script', load: () => import('./completion.js') },
  { name: 'run', describe: 'Run a command in a new container', load: () => import('./run.js') },
  { name: 'exec', describe: 'Run a command in a running container', load: () => import('./exec.js') },
  { name: 'ps', aliases: ['container ls'], describe: 'List containers', load: () => import('./ps.js') },
  { name: 'logs', describe: 'Show the output of a container', load: () => import('./logs.js') },
  { name: 'stop', describe: 'Stop running containers', load: () => import('./stop.js') },
  { name: 'kill', describe: 'Send a signal to running containers', load: () => import('./kill.js') },
  { name: 'rm', describe: 'Remove containers', load: () => import('./rm.js') },
  { name: 'start', describe: 'Start stopped containers', load: () => import('./start.js') },
  { name: 'wait', describe: 'Wait for containers to stop and print their exit codes', load: () => import('./wait.js') },
  { name: 'diff', describe: "Inspect changes to files on a container's filesystem", load: () => import('./diff.js') },
  { name: 'commit', describe: "Create a new image from a container's changes", load: () => import('./commit.js') },
  { name: 'container', describe: 'Manage containers (ls, prune, inspect)', load: () => import('./container.js') },
];
