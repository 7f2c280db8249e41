// One build with berth's built-in builder (the driver for bench/build-builtin.sh):
//   node bench/build-builtin.mjs ROOT CONTEXT TAG [--base-layout DIR] [--no-cache]
// Prints "berth <ms> <steps run>/<steps>" and the peak RSS.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNativeBuilder } from '../dist/build/native/index.js';
import { ContentStore } from '../dist/store/store.js';
import { tagImage } from '../dist/store/images.js';

const [root, context, tag, ...rest] = process.argv.slice(2);
const baseAt = rest.indexOf('--base-layout');
if (baseAt >= 0) {
  const layout = rest[baseAt + 1];
  const store = await ContentStore.open(root);
  for (const f of readdirSync(join(layout, 'blobs', 'sha256'))) await store.putBytes(readFileSync(join(layout, 'blobs', 'sha256', f)), { digest: `sha256:${f}` });
  const m = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0];
  await tagImage(store, 'base', { mediaType: m.mediaType, digest: m.digest, size: m.size });
  process.exit(0);
}
const t0 = performance.now();
const r = await createNativeBuilder({ root }).build({
  context, tags: [tag], buildArgs: {}, labels: {}, secrets: [], ssh: [], cacheFrom: [], cacheTo: [], outputs: [],
  noCache: rest.includes('--no-cache'),
});
const ms = performance.now() - t0;
console.log(`berth ${ms.toFixed(0)} ms, ran ${r.steps.filter((s) => !s.cached).length}/${r.steps.length} steps, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
