// Build a multi-layer image of incompressible data in a berth store (uses dist/, run `npx tsc -p .` first).
//   node bench/load-corpus.mjs ROOT NAME LAYERS MB_PER_LAYER
import { randomBytes } from 'node:crypto';
import { ContentStore, tagImage } from '../dist/store/index.js';
import { canonicalJson, sha256, MediaType } from '../dist/oci/index.js';
import { tarOf } from './tar-member.mjs';

const [root, name, layers = '10', mb = '10'] = process.argv.slice(2);
const store = await ContentStore.open(root);
const descs = [];
for (let i = 0; i < Number(layers); i++) {
  const tar = tarOf(`layer${i}.bin`, randomBytes(Number(mb) * 1024 * 1024));
  const c = await store.putBytes(tar);
  descs.push({ mediaType: MediaType.OCI_LAYER, digest: c.digest, size: c.size });
}
const config = canonicalJson({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: descs.map((d) => d.digest) } });
const cfg = await store.putBytes(config);
const manifest = canonicalJson({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: cfg.digest, size: cfg.size }, layers: descs });
const m = await store.putBytes(manifest);
await tagImage(store, name, { mediaType: MediaType.OCI_MANIFEST, digest: m.digest, size: m.size });
void sha256;
