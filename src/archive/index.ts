/** `berth/archive`: applying layers safely, and gzip/zstd (de)compression. */
export { applyLayer, DEFAULT_LIMITS, type ApplyOptions, type ApplyResult, type ApplyLimits, type WhiteoutMode } from './apply.js';
export { compressStream, decompressStream, detectCompression } from './compress.js';
