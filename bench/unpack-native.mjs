// The native door against its process fallback: apply a layer of N whiteouts (overlay mode:
// N mknod calls) and N files carrying security.capability (N lsetxattr calls).
//   node bench/unpack-native.mjs LAYER.tar DEST addon|process
import { createReadStream } from 'node:fs';
import { applyLayer } from '../dist/archive/apply.js';
import { setNativeForTesting } from '../dist/archive/native.js';

const [layer, dest, kind] = process.argv.slice(2);
setNativeForTesting(kind);
const t0 = performance.now();
const r = await applyLayer(createReadStream(layer), dest, { whiteouts: 'overlay' });
process.stdout.write(`${Math.round(performance.now() - t0)} ${r.entries}\n`);
