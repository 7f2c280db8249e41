export { ContainerdClient, containerdAddress, preloadGrpc, DEFAULT_CONTAINERD_ADDRESS, DEFAULT_NAMESPACE, type ConnectOptions, type ContentInfo, type ImageRecord } from './client.js';
export { ContainerdSource, ContainerdTarget, childLabels, verifyImage, type TargetCounts } from './content.js';
export { unpackImage, chainIds, type UnpackResult } from './unpack.js';
export type { Mount } from './client.js';
