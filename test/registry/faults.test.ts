import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isBerthError } from '../../src/errors.js';
import { pull } from '../../src/pull.js';
import { push } from '../../src/push.js';
import { ContentStore } from '../../src/store/store.js';
import { randomImage, startRegistry, testdir, validateImage, type RandomImage, type RunningRegistry } from '../kit/index.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

let reg: RunningRegistry;
let proxy: FaultProxy;
let img: RandomImage;
let big: RandomImage['layers'][number];
const fast = { retryBaseMs: 5 };
// The image as seen through the proxy.
const viaProxy = () => img.name.replace(reg.host, proxy.host);

beforeAll(async () => {
  reg = await startRegistry();
  const src = await ContentStore.open(await testdir('berth-faults-src-'));
  img = await randomImage(src, { layers: 2, layerSize: 1_500_000, gzip: false, name: `${reg.host}/faults/img:v1` });
  await push(src, img.name, { compression: 'none' }); // exact bytes: the faults are placed by offset
  big = img.layers[0]!;
  proxy = await startFaultProxy(reg.url);
});
afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
});
beforeEach(() => {
  proxy.rules.length = 0;
  proxy.blobBytes = 0;
  proxy.requests.length = 0;
});

const layerPath = () => new RegExp(`/blobs/${big.desc.digest}`);
const total = () => img.layers.reduce((a, l) => a + l.desc.size, 0) + img.manifest.config.size;

async function freshStore() {
  return ContentStore.open(await testdir('berth-faults-'));
}

describe('pull through a fault-injecting proxy', () => {
  it('resumes a blob with Range after a reset mid-body and verifies it', async () => {
    proxy.rules.push({ method: 'GET', path: layerPath(), action: { kind: 'reset', after: 700_000 } });
    const s = await freshStore();
    const r = await pull(s, viaProxy(), fast);
    await validateImage(s, r.name);
    const ranged = proxy.requests.filter((q) => q.headers.range);
    expect(ranged.map((q) => q.headers.range)).toEqual(['bytes=700000-']);
    // Only what was left is fetched again.
    expect(proxy.blobBytes).toBe(total());
  });

  it('retries 500s on the manifest and honours Retry-After on a 429', async () => {
    proxy.rules.push({ method: 'GET', path: /\/manifests\//, action: { kind: 'status', status: 500 }, times: 2 });
    proxy.rules.push({ method: 'GET', path: layerPath(), action: { kind: 'status', status: 429, retryAfter: '1' } });
    const s = await freshStore();
    const t0 = Date.now();
    const r = await pull(s, viaProxy(), fast);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    await validateImage(s, r.name);
    expect(proxy.requests.filter((q) => q.url.includes('/manifests/')).length).toBe(3);
  });

  it('gives up after the retries with one UNAVAILABLE error and leaves no tag', async () => {
    proxy.rules.push({ path: /\/manifests\//, action: { kind: 'status', status: 503 }, times: 100 });
    const s = await freshStore();
    const e = await pull(s, viaProxy(), { ...fast, retries: 2 }).catch((x: unknown) => x);
    expect(isBerthError(e, 'UNAVAILABLE')).toBe(true);
    expect((e as Error).message).toMatch(/503/);
    expect(await s.listImages()).toEqual([]);
  });

  it('rejects a flipped byte: DIGEST_MISMATCH, no blob, no tag; the next pull is clean', async () => {
    proxy.rules.push({ method: 'GET', path: layerPath(), action: { kind: 'flip', at: 1000 } });
    const s = await freshStore();
    const e = await pull(s, viaProxy(), fast).catch((x: unknown) => x);
    expect(isBerthError(e, 'DIGEST_MISMATCH'), String(e)).toBe(true);
    expect(await s.has(big.desc)).toBe(false);
    expect(await s.listImages()).toEqual([]);
    expect(await readdir(s.ingestDir)).toEqual([]);
    const r = await pull(s, viaProxy(), fast);
    await validateImage(s, r.name);
  });

  it('splices a 206 onto bytes an earlier run left, and restarts the blob on a 200', async () => {
    // An earlier run left 1 MB of the layer in the ingest.
    const s = await freshStore();
    const w = await s.ingest({ expected: big.desc.digest });
    await w.write(big.tar.subarray(0, 1_000_000));
    await w.close();
    const r = await pull(s, viaProxy(), fast);
    await validateImage(s, r.name);
    expect(proxy.blobBytes).toBe(total() - 1_000_000);

    const s2 = await freshStore();
    const w2 = await s2.ingest({ expected: big.desc.digest });
    await w2.write(big.tar.subarray(0, 1_000_000));
    await w2.close();
    proxy.blobBytes = 0;
    proxy.rules.push({ method: 'GET', path: layerPath(), action: { kind: 'ignore-range' } });
    const r2 = await pull(s2, viaProxy(), fast);
    await validateImage(s2, r2.name);
    expect(proxy.blobBytes).toBe(total());
    expect((await stat(s2.blobPath(big.desc.digest))).size).toBe(big.desc.size);
  });

  it('refuses a registry that lies about the size of a blob', async () => {
    proxy.rules.push({
      method: 'GET',
      path: layerPath(),
      action: { kind: 'body', status: 200, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(big.desc.size + 10) },
    });
    const s = await freshStore();
    const e = await pull(s, viaProxy(), fast).catch((x: unknown) => x);
    expect(isBerthError(e, 'DIGEST_MISMATCH'), String(e)).toBe(true);
    expect(await s.has(big.desc)).toBe(false);
    expect(await s.listImages()).toEqual([]);
  });

  it('refuses an oversized manifest and a manifest whose digest lies', async () => {
    proxy.rules.push({ method: 'GET', path: /\/manifests\//, action: { kind: 'body', status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: Buffer.alloc(5 * 1024 * 1024, 32) } });
    const s = await freshStore();
    const e = await pull(s, viaProxy(), fast).catch((x: unknown) => x);
    expect(isBerthError(e, 'INVALID_ARGUMENT'), String(e)).toBe(true);
    expect((e as Error).message).toMatch(/limit/);
    proxy.rules.push({
      method: 'GET',
      path: /\/manifests\//,
      action: { kind: 'body', status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': big.desc.digest }, body: Buffer.from(JSON.stringify(img.manifest)) },
    });
    const e2 = await pull(s, viaProxy(), fast).catch((x: unknown) => x);
    expect(isBerthError(e2, 'DIGEST_MISMATCH'), String(e2)).toBe(true);
    expect(await s.listImages()).toEqual([]);
    expect((await readdir(join(s.blobsDir))).length).toBe(0);
  });
});
