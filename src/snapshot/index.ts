export { Snapshotter, chainIds, type SnapshotDriver, type SnapshotInfo } from './snapshotter.js';
