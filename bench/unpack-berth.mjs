// Unpack every layer of an OCI layout's tagged image into DEST with berth's applyLayer.
//   node bench/unpack-berth.mjs LAYOUT TAG DEST apply|overlay
// 'apply': all layers over one directory (what `umoci unpack` does);
// 'overlay': each layer into DEST/<n> with overlay whiteouts (what the snapshotter does).
// Prints the in-process time in ms (without node's own start) on stdout.
import { createReadStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyLayer } from '../dist/archive/apply.js';

const [layout, tag, dest, mode = 'apply'] = process.argv.slice(2);
const t0 = performance.now();
const blob = (d) => join(layout, 'blobs', 'sha256', d.slice(7));
const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
const m = index.manifests.find((x) => x.annotations?.['org.opencontainers.image.ref.name'] === tag);
const manifest = JSON.parse(readFileSync(blob(m.digest), 'utf8'));
const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8'));
for (const [i, l] of manifest.layers.entries()) {
  const dir = mode === 'apply' ? dest : join(dest, String(i));
  mkdirSync(dir, { recursive: true });
  const r = await applyLayer(createReadStream(blob(l.digest), { highWaterMark: 1 << 20 }), dir, { whiteouts: mode });
  if (r.diffId !== config.rootfs.diff_ids[i]) throw new Error(`diff_id mismatch in layer ${i}`);
}
process.stdout.write(`${Math.round(performance.now() - t0)}\n`);
