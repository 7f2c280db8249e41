// Write an OCI layout with random single-file tar layers, gzip at level 0 (stored blocks: a valid
// tar+gzip layer that skopeo does not recompress, generated fast):
//   node bench/pull-push-corpus.mjs DIR NAME LAYERS MB_PER_LAYER
// Adds NAME to DIR/index.json (org.opencontainers.image.ref.name).
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';

const [dir, name, nLayers, mb] = process.argv.slice(2);
const blobs = join(dir, 'blobs', 'sha256');
mkdirSync(blobs, { recursive: true });
writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');

function header(fname, size) {
  const h = Buffer.alloc(512);
  h.write(fname, 0, 100);
  h.write('0000644\0', 100); h.write('0000000\0', 108); h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136); h.write('        ', 148); h.write('0', 156);
  h.write('ustar\0', 257); h.write('00', 263);
  let sum = 0; for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

async function writeBlob(chunks) {
  const tmp = join(blobs, `tmp-${process.pid}`);
  const out = createWriteStream(tmp);
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of chunks) {
    hash.update(c); size += c.length;
    if (!out.write(c)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
  const digest = `sha256:${hash.digest('hex')}`;
  renameSync(tmp, join(blobs, digest.slice(7)));
  return { digest, size };
}

async function* layer(i, bytes) {
  yield header(`layer${i}.bin`, bytes);
  for (let left = bytes; left > 0; left -= 1 << 20) yield randomBytes(Math.min(left, 1 << 20));
  yield Buffer.alloc((512 - (bytes % 512)) % 512 + 1024);
}

const layers = [];
const diffIds = [];
for (let i = 0; i < Number(nLayers); i++) {
  const diff = createHash('sha256');
  const tar = Readable.from(layer(i, Math.round(Number(mb) * 1024 * 1024)));
  tar.on('data', (c) => diff.update(c));
  const d = await writeBlob(tar.pipe(createGzip({ level: 0 })));
  layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...d });
  diffIds.push(`sha256:${diff.digest('hex')}`);
}
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: { Cmd: ['/bin/sh'] } }));
const cfg = await writeBlob([config]);
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg }, layers }));
const m = await writeBlob([manifest]);
const idxPath = join(dir, 'index.json');
const idx = existsSync(idxPath) ? JSON.parse(readFileSync(idxPath, 'utf8')) : { schemaVersion: 2, manifests: [] };
idx.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': name } });
writeFileSync(idxPath, JSON.stringify(idx));
console.log(`${name} ${m.digest}`);
