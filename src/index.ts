/** berth's public library API. The library never prints and never exits. */
export * from './errors.js';
export * from './oci/index.js';
export { ContentStore, IngestWriter, type ImageRecord } from './store/store.js';
export { tagImage, untagImage, findImage, viewImage, getImage, annotateName, type ImageView } from './store/images.js';
export { resolveRoot } from './store/root.js';
