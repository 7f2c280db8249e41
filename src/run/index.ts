/** `berth/run`: the runc wrapper, runtime specs as docker makes them, and container records. */
export { Runc, parseRuncVersion, runcHasSecurityFixes, type RuncOptions, type RuncState, type RuncVersion } from './runc.js';
export { buildSpec, buildProcess, resolveUser, computeCaps, DEFAULT_CAPS, parseBytes, parseEnvFlags, parseEnvFile, type RuntimeSpec, type SpecOptions } from './spec.js';
export { Containers, type ContainerRecord, type ContainerState, type ContainerInfo, type CreateOptions, type ExecOptions, type SuperviseIO, type LogEntry } from './containers.js';
