// The floor under berth for load and pull: the same bytes moved by the least a Node program can
// do (no berth code): hash every byte with sha256, write it, fsync. Benches time it next to berth.
//   node bench/node-floor.mjs load ARCHIVE.tar OUTDIR   one pass over the archive through two
//                                                       reused 2 MiB buffers into one file
//   node bench/node-floor.mjs pull HOST:PORT/REPO:TAG OUTDIR   node:http GETs of the manifest
//                                                       and every blob, 4 at a time, one file each
import { createHash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import http from 'node:http';

const [mode, src, out] = process.argv.slice(2);
await mkdir(out, { recursive: true });

if (mode === 'load') {
  const fh = await open(src, 'r');
  const dst = await open(`${out}/all`, 'w');
  const bufs = [Buffer.allocUnsafeSlow(2 << 20), Buffer.allocUnsafeSlow(2 << 20)];
  const hash = createHash('sha256');
  let pos = 0;
  let pending;
  for (let i = 0; ; i++) {
    const b = bufs[i & 1];
    const { bytesRead } = await fh.read(b, 0, b.length, pos);
    if (bytesRead === 0) break;
    hash.update(b.subarray(0, bytesRead));
    await pending;
    pending = dst.write(b, 0, bytesRead, pos);
    pos += bytesRead;
  }
  await pending;
  await dst.sync();
  await dst.close();
  await fh.close();
  console.log(`sha256:${hash.digest('hex')} ${pos}`);
} else if (mode === 'pull') {
  const [hostport, rest] = [src.slice(0, src.indexOf('/')), src.slice(src.indexOf('/') + 1)];
  const [repo, tag] = rest.split(':');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const get = (path, headers = {}) =>
    new Promise((resolve, reject) => http.get(`http://${hostport}/v2/${repo}/${path}`, { agent, headers }, resolve).on('error', reject));
  const chunks = [];
  for await (const c of await get(`manifests/${tag}`, { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' })) chunks.push(c);
  const m = JSON.parse(Buffer.concat(chunks).toString());
  const blobs = [m.config, ...m.layers];
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < blobs.length) {
      const b = blobs[next++];
      const res = await get(`blobs/${b.digest}`);
      const fh = await open(`${out}/${b.digest.slice(7)}`, 'w');
      const h = createHash('sha256');
      for await (const c of res) {
        h.update(c);
        await fh.write(c);
      }
      await fh.sync();
      await fh.close();
      if (`sha256:${h.digest('hex')}` !== b.digest) throw new Error(`${b.digest}: digest mismatch`);
    }
  }));
  agent.destroy();
} else throw new Error('mode: load or pull');
