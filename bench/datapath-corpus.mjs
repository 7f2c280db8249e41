// A docker-archive (docker save's legacy layout, uncompressed layers) of LAYERS layers holding
// TOTAL_MB in all, each layer a tar of several files of mixed content: a third random bytes, a
// third text-like (words: gzip ~3x), a third runs and zeros (very compressible). No berth code.
//   node bench/datapath-corpus.mjs OUT.tar LAYERS TOTAL_MB NAME
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

const [out, nLayers = '20', totalMb = '100', name = 'bench/datapath:1'] = process.argv.slice(2);
const layerBytes = Math.round((Number(totalMb) * 1024 * 1024) / Number(nLayers));
const CHUNK = 1 << 20;
const words = 'the of and a to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part'.split(' ');

function header(fname, size, type = '0') {
  const h = Buffer.alloc(512);
  h.write(fname, 0, 100);
  h.write(type === '5' ? '0000755\0' : '0000644\0', 100); h.write('0000000\0', 108); h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('14712345670\0', 136); h.write('        ', 148); h.write(type, 156);
  h.write('ustar\0', 257); h.write('00', 263);
  let sum = 0; for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}
const pad = (n) => Buffer.alloc((512 - (n % 512)) % 512);

function textChunk(n) {
  const r = randomBytes(n >> 2);
  const parts = []; let len = 0;
  for (let i = 0; len < n; i++) { const w = words[r[i % r.length] % words.length]; parts.push(w); len += w.length + 1; if (i % r.length === r.length - 1) r.set(randomBytes(r.length)); }
  return Buffer.from(parts.join(" ") + " ").subarray(0, n);
}
function runsChunk(n) {
  const b = Buffer.alloc(n);
  const r = randomBytes(n >> 12);
  for (let i = 0; i < r.length; i++) b.fill(r[i] & 1 ? 0 : r[i], i << 12, Math.min(n, (i << 12) + 2048));
  return b;
}
const kinds = [(n) => randomBytes(n), textChunk, runsChunk];

// One layer as an array of buffers (≤ a few MB in memory at a time for the 100 MB corpus; the
// 1 GB layer is streamed through `emit`).
async function layer(i, emit) {
  const hash = createHash('sha256');
  let size = 0;
  const put = async (b) => { hash.update(b); size += b.length; await emit(b); };
  await put(header(`l${i}/`, 0, '5'));
  const files = 6;
  const per = Math.floor(layerBytes / files);
  for (let f = 0; f < files; f++) {
    const make = kinds[(i + f) % 3];
    await put(header(`l${i}/f${f}.bin`, per));
    for (let left = per; left > 0; left -= CHUNK) await put(make(Math.min(CHUNK, left)));
    await put(pad(per));
  }
  await put(Buffer.alloc(1024));
  return { digest: hash.digest('hex'), size };
}

const ws = createWriteStream(out);
const write = async (b) => { if (!ws.write(b)) await once(ws, 'drain'); };
// The layer size is known up front (headers + padded files + end blocks): the member header goes first.
const per = Math.floor(layerBytes / 6);
const layerSize = 512 + 6 * (512 + per + ((512 - (per % 512)) % 512)) + 1024;
const diffIds = [];
for (let i = 0; i < Number(nLayers); i++) {
  await write(header(`layer${i}/`, 0, '5'));
  await write(header(`layer${i}/layer.tar`, layerSize));
  const l = await layer(i, write);
  if (l.size !== layerSize) throw new Error(`layer size ${l.size} != ${layerSize}`);
  await write(pad(l.size));
  diffIds.push(`sha256:${l.digest}`);
}
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIds }, history: diffIds.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'bench' })) }));
const cfgHex = createHash('sha256').update(config).digest('hex');
await write(header(`${cfgHex}.json`, config.length)); await write(config); await write(pad(config.length));
const manifest = Buffer.from(JSON.stringify([{ Config: `${cfgHex}.json`, RepoTags: [name], Layers: diffIds.map((_, i) => `layer${i}/layer.tar`) }]));
await write(header('manifest.json', manifest.length)); await write(manifest); await write(pad(manifest.length));
await write(Buffer.alloc(1024));
ws.end(); await once(ws, 'finish');
console.log(`${out}: ${nLayers} layers, ${(Number(nLayers) * layerSize / 1048576).toFixed(1)} MB, config sha256:${cfgHex}`);
