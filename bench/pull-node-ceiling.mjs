// Node's own ceiling for one blob: undici GET + sha256 + write to a file (no berth code).
//   node bench/pull-node-ceiling.mjs URL OUTFILE
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { request } from 'undici';

const [url, out] = process.argv.slice(2);
const res = await request(url);
if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
const fh = await open(out, 'w');
const hash = createHash('sha256');
for await (const c of res.body) {
  hash.update(c);
  await fh.write(c);
}
await fh.sync();
await fh.close();
console.log(`sha256:${hash.digest('hex')}`);
