export { testdir } from './testdir.js';
export { randomImage, validateImage, type RandomImage, type RandomImageOptions } from './image.js';
export { tarBytes, tarOf, type TarEntry } from './tar.js';
export { startRegistry, freePort, type RunningRegistry, type RegistryOptions } from './registry.js';
export { runBerth, BERTH_BIN, type RunResult } from './cli.js';
export { snapshotTree, treeListing } from './tree.js';
export { startContainerd, type Containerd } from './containerd.js';
export { errorCode } from './errors.js';
