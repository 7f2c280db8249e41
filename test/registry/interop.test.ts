import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/oci/digest.js';
import { walk } from '../../src/oci/walk.js';
import { pull } from '../../src/pull.js';
import { push } from '../../src/push.js';
import { ContentStore } from '../../src/store/store.js';
import { BERTH_BIN, randomImage, runBerth, startRegistry, testdir, validateImage, type RandomImage, type RunningRegistry } from '../kit/index.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

const run = promisify(execFile);
let reg: RunningRegistry;
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => reg?.stop());

/** Copy an image out of a store into a plain OCI layout whose only ref name is `tag`. */
async function exportLayout(store: ContentStore, img: RandomImage, dir: string, tag: string) {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const g = await walk(store, img.root);
  for (const n of g.nodes) await copyFile(store.blobPath(n.desc.digest), join(dir, 'blobs', 'sha256', n.desc.digest.slice(7)));
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...img.root, annotations: { 'org.opencontainers.image.ref.name': tag } }] }));
}

describe('interop with skopeo', () => {
  it('pulls what skopeo pushed and skopeo copies what berth pushed; digests equal', async () => {
    const a = await ContentStore.open(await testdir());
    const img = await randomImage(a, { layers: 3, layerSize: 100_000 });
    const layout = await testdir('berth-layout-');
    await exportLayout(a, img, layout, 'v1');
    await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg.host}/interop/from-skopeo:v1`]);
    const raw = (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/interop/from-skopeo:v1`], { encoding: 'buffer' })).stdout;
    const b = await ContentStore.open(await testdir());
    const r = await pull(b, `${reg.host}/interop/from-skopeo:v1`);
    expect(r.root.digest).toBe(sha256(raw));
    expect(r.root.digest).toBe(img.root.digest);
    await validateImage(b, r.name);

    // berth pushes (chunked: 64 KiB chunks), skopeo reads it back and verifies every blob.
    const pushed = await push(b, `${reg.host}/interop/from-berth:v2`, { source: r.name, chunkSize: 64 * 1024 });
    const out = await testdir('berth-skopeo-out-');
    await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/interop/from-berth:v2`, `oci:${out}:x`]);
    const idx = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    expect(idx.manifests[0].digest).toBe(pushed.digest);
    expect(pushed.digest).toBe(img.root.digest);
  });
});

describe('a pull killed with SIGKILL', () => {
  let proxy: FaultProxy;
  afterAll(async () => proxy?.stop());

  it('leaves a resumable ingest; the next run fetches little more than what was left', async () => {
    const a = await ContentStore.open(await testdir());
    const img = await randomImage(a, { layers: 1, layerSize: 6_000_000, gzip: false, name: `${reg.host}/interop/big:v1` });
    await push(a, img.name, { compression: 'none' }); // the stall is placed by offset in the stored layer
    proxy = await startFaultProxy(reg.url);
    const layer = img.layers[0]!.desc;
    const stallAt = 2_500_000;
    proxy.rules.push({ method: 'GET', path: new RegExp(`/blobs/${layer.digest}`), action: { kind: 'stall', after: stallAt } });
    const root = await testdir();
    const name = img.name.replace(reg.host, proxy.host);
    const child = spawn(process.execPath, [BERTH_BIN, '--root', root, 'pull', name], { stdio: 'ignore' });
    const data = join(root, 'ingest', layer.digest.slice(7), 'data');
    const deadline = Date.now() + 30_000;
    let have = 0;
    while (Date.now() < deadline) {
      have = await stat(data).then((s) => s.size, () => 0);
      if (have >= stallAt) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(have).toBe(stallAt);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // The lock names a dead pid; the data stays.
    expect(await readdir(join(root, 'ingest', layer.digest.slice(7)))).toContain('data');

    proxy.blobBytes = 0;
    proxy.requests.length = 0;
    const again = await runBerth(['pull', '-q', name], { root });
    expect(again.code, again.stderr).toBe(0);
    const ranged = proxy.requests.filter((q) => q.headers.range);
    expect(ranged.map((q) => q.headers.range)).toEqual([`bytes=${stallAt}-`]);
    // The rest of the layer, plus the config when the killed run had not committed it yet.
    expect(proxy.blobBytes).toBeGreaterThanOrEqual(layer.size - stallAt);
    expect(proxy.blobBytes).toBeLessThanOrEqual(layer.size - stallAt + img.manifest.config.size);
    const s = await ContentStore.open(root);
    await validateImage(s, again.stdout.trim());
    expect(await readdir(s.ingestDir)).toEqual([]);
  });
});
