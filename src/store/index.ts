/** `berth/store`: the local content store (an OCI image layout), names, and garbage collection. */
export { ContentStore, IngestWriter, type ImageRecord, type Committed } from './store.js';
export { tagImage, untagImage, findImage, viewImage, getImage, annotateName, removeImage, type ImageView } from './images.js';
export { resolveRoot } from './root.js';
export { gc, check, reachable, type GcOptions, type GcResult, type CheckResult, type CheckProblem } from './gc.js';
