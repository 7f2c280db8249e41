// Corpus for bench/copy-containerd.sh (uses dist/, run `npx tsc -p .` first):
//   node bench/copy-containerd-corpus.mjs ROOT NAME LAYERS MB_PER_LAYER
// Writes NAME:1 (LAYERS layers of incompressible data) and NAME:2, the same image "rebuilt"
// with its last layer replaced by a new 1 MiB one (every other layer shared).
import { randomBytes } from 'node:crypto';
import { ContentStore, tagImage } from '../dist/store/index.js';
import { canonicalJson, MediaType } from '../dist/oci/index.js';
import { tarOf } from './tar-member.mjs';

const [root, name, layers = '20', mb = '5'] = process.argv.slice(2);
const store = await ContentStore.open(root);
async function layer(i, bytes) {
  const c = await store.putBytes(tarOf(`layer${i}.bin`, randomBytes(bytes)));
  return { mediaType: MediaType.OCI_LAYER, digest: c.digest, size: c.size };
}
async function image(tag, descs) {
  const config = canonicalJson({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: descs.map((d) => d.digest) } });
  const cfg = await store.putBytes(config);
  const manifest = canonicalJson({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: cfg.digest, size: cfg.size }, layers: descs });
  const m = await store.putBytes(manifest);
  await tagImage(store, `${name}:${tag}`, { mediaType: MediaType.OCI_MANIFEST, digest: m.digest, size: m.size });
}
const descs = [];
for (let i = 0; i < Number(layers); i++) descs.push(await layer(i, Number(mb) * 1024 * 1024));
await image('1', descs);
await image('2', [...descs.slice(0, -1), await layer(descs.length, 1024 * 1024)]);
