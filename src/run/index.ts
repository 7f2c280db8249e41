/**
 * `berth/run`: the runc wrapper, runtime specs as docker makes them, bundles, one process on any
 * bundle (runProcess / execProcess), container records, logs and the Containers façade.
 */
export { Runc, parseRuncVersion, runcHasSecurityFixes, type RuncOptions, type RuncState, type RuncVersion } from './runc.js';
export {
  buildSpec,
  buildProcess,
  resolveUser,
  computeCaps,
  DEFAULT_CAPS,
  parseBytes,
  parseEnvFlags,
  parseEnvFile,
  type BindSpec,
  type ResolvedUser,
  type RuntimeSpec,
  type SpecMount,
  type SpecOptions,
  type SpecProcess,
} from './spec.js';
export { writeBundle, prepareRootfs, bundleRootfs } from './bundle.js';
export { runProcess, execProcess, signalNumber, type ProcessIO, type ProcessResult, type RunProcessOptions, type ExecProcessOptions } from './process.js';
export { Records, type ContainerRecord, type ContainerState, type ContainerInfo, type ContainerPaths, type ContainerStatus } from './records.js';
export { LogWriter, readLog, type LogEntry } from './logs.js';
export { Containers, type CreateOptions, type ExecOptions, type SuperviseIO } from './containers.js';
