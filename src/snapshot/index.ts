export {
  Snapshotter,
  LocalSnapshotter,
  openSnapshotter,
  chainIds,
  type DiffOptions,
  type SnapshotDriver,
  type SnapshotInfo,
  type SnapshotKind,
} from './snapshotter.js';
export { unpack, type UnpackImage } from './unpack.js';
