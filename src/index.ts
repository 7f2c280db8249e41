/** berth's public library API. The library never prints and never exits. */
export * from './errors.js';
export * from './oci/index.js';
export { ContentStore, IngestWriter, type ImageRecord } from './store/store.js';
export { tagImage, untagImage, findImage, viewImage, getImage, annotateName, type ImageView } from './store/images.js';
export { resolveRoot } from './store/root.js';
export { loadArchive, type LoadOptions, type LoadResult, type LoadedImage, type LoadInput } from './import/load.js';
export { saveImages, saveImagesToFile, type SaveOptions, type SaveResult, type SaveFormat } from './import/save.js';
export { importRootfs, type ImportOptions, type ImportResult } from './import/rootfs.js';
export { applyChanges } from './import/changes.js';
export { pull, push, login, logout, verifyLogin, Repository, Transport, CredentialStore, parseWwwAuthenticate, ResumingStoreTarget } from './registry/index.js';
export type { PullOptions, PullResult, PushOptions, PushResult, RegistryOptions, TransportOptions, Credentials, Challenge } from './registry/index.js';
export { applyLayer, DEFAULT_LIMITS, type ApplyOptions, type ApplyResult, type ApplyLimits, type WhiteoutMode } from './archive/apply.js';
export { compressStream, decompressStream, detectCompression } from './archive/compress.js';
export { Snapshotter, chainIds, type SnapshotDriver, type SnapshotInfo } from './snapshot/index.js';
export { Runc, parseRuncVersion, runcHasSecurityFixes, type RuncOptions, type RuncState, type RuncVersion } from './run/runc.js';
export { buildSpec, buildProcess, resolveUser, computeCaps, DEFAULT_CAPS, type RuntimeSpec, type SpecOptions } from './run/spec.js';
export { Containers, type ContainerRecord, type ContainerState, type ContainerInfo, type CreateOptions as ContainerCreateOptions, type ExecOptions as ContainerExecOptions, type SuperviseIO, type LogEntry } from './run/containers.js';
