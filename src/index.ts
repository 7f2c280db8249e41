/**
 * berth's public library API: the `openBerth()` front door, its types, and the error class.
 * Nothing here loads a room at import time (start time is a feature): the building blocks are
 * subpath exports (`berth/oci`, `berth/store`, `berth/registry`, `berth/archive`, `berth/run`,
 * `berth/snapshot`), and the facade imports each on first use. The library never prints and
 * never exits.
 */
export { openBerth, Berth } from './berth.js';
export type {
  OpenOptions,
  RegistrySettings,
  Output,
  PullPolicy,
  ContainerOptions,
  RunOptions,
  RunResult,
  ProcessResult,
  ExecOptions,
  RegistryCallOptions,
  PullOptions,
  PushOptions,
  LoadInput,
  LoadOptions,
  SaveOptions,
  ImportOptions,
  PruneOptions,
  PruneResult,
  ImageHandle,
  ContainerHandle,
  ImageSummary,
  ImageListOptions,
  RemoveImagesResult,
  ImageView,
  GcResult,
  CheckResult,
  DiskUsage,
  SystemInfo,
  LoadResult,
  SaveResult,
  SaveFormat,
  ImportResult,
  PullResult,
  PushResult,
  ContainerInfo,
  ContainerRecord,
  LogEntry,
  Credentials,
  CopyImageOptions,
  CopyImageResult,
  BuildOptions,
  BuildRequest,
  BuildResult,
  BuildEvent,
  BuildStep,
  OutputSpec,
  SecretSpec,
  ImageHistoryRow,
  ContentPruneResult,
} from './berth.js';
export { BerthError, isBerthError, EXIT_CODES, ERROR_CODES, type ErrorCode, type BerthErrorOptions } from './errors.js';
export type { ProgressEvent, OpOptions } from './oci/content.js';
export type { Descriptor, Digest, Manifest, Index, ImageConfig, ContainerConfig, Platform, HistoryEntry } from './oci/types.js';
