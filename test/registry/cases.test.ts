import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isBerthError } from '../../src/errors.js';
import { canonicalJson } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { hostPlatform } from '../../src/oci/platform.js';
import type { Descriptor, Index } from '../../src/oci/types.js';
import { pull } from '../../src/pull.js';
import { push } from '../../src/push.js';
import { tagImage } from '../../src/store/images.js';
import { ContentStore } from '../../src/store/store.js';
import { freePort, randomImage, runBerth, startRegistry, testdir, validateImage, type RunningRegistry } from '../kit/index.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

let reg: RunningRegistry;
let proxy: FaultProxy;
const fast = { retryBaseMs: 5 };
beforeAll(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.url);
});
afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
});
beforeEach(() => {
  proxy.rules.length = 0;
  proxy.requests.length = 0;
});

const store = async () => ContentStore.open(await testdir());

describe('bad input: one clear error, nothing in the store', () => {
  it('404 manifest, connection refused, unknown host, schema 1', async () => {
    const s = await store();
    const cases: [string, string, RegExp][] = [
      [`${reg.host}/nope/missing:1`, 'NOT_FOUND', /manifest for .*nope\/missing:1 not found/],
      [`127.0.0.1:${await freePort()}/a/b:1`, 'UNAVAILABLE', /connection refused by 127\.0\.0\.1/],
      ['no-such-host.invalid/a/b:1', 'UNAVAILABLE', /cannot resolve registry host no-such-host\.invalid/],
    ];
    for (const [ref, code, re] of cases) {
      const e = await pull(s, ref, fast).catch((x: unknown) => x);
      expect(isBerthError(e, code as 'NOT_FOUND'), `${ref}: ${String(e)}`).toBe(true);
      expect((e as Error).message).toMatch(re);
    }
    proxy.rules.push({
      path: /\/manifests\//,
      action: { kind: 'body', status: 200, headers: { 'content-type': MediaType.DOCKER_MANIFEST_V1_SIGNED }, body: Buffer.from('{"schemaVersion":1,"name":"a/b","tag":"1","fsLayers":[]}') },
    });
    const e = await pull(s, `${proxy.host}/a/b:1`, fast).catch((x: unknown) => x);
    expect(isBerthError(e, 'UNSUPPORTED'), String(e)).toBe(true);
    expect((e as Error).message).toMatch(/schema 1/);
    expect(await s.listImages()).toEqual([]);
    expect(await s.listBlobs()).toEqual([]);
  });

  it('the CLI prints one line and exits with the code of the error', async () => {
    const r = await runBerth(['pull', `${reg.host}/nope/missing:1`], { root: await testdir() });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const bad = await runBerth(['pull', 'UPPER/Case'], { root: await testdir() });
    expect(bad.code).toBe(2);
  });
});

describe('indexes, mounts and upload modes', () => {
  it('pushes an index with --all-platforms; pull picks the platform or keeps every one', async () => {
    const s = await store();
    const host = await randomImage(s, { layers: 1 });
    const other = await randomImage(s, { layers: 1 });
    const hp = hostPlatform();
    const otherArch = hp.architecture === 'arm64' ? 'amd64' : 'arm64';
    const index: Index = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_INDEX,
      manifests: [
        { ...host.root, platform: { os: 'linux', architecture: hp.architecture } },
        { ...other.root, platform: { os: 'linux', architecture: otherArch } },
      ],
    };
    const c = await s.putBytes(canonicalJson(index));
    const root: Descriptor = { mediaType: MediaType.OCI_INDEX, digest: c.digest, size: c.size };
    const name = await tagImage(s, `${reg.host}/multi/app:1`, root);
    const pushed = await push(s, name, { allPlatforms: true });
    expect(pushed.digest).toBe(root.digest);

    const one = await store();
    const r1 = await pull(one, name);
    expect(r1.root.digest).toBe(root.digest);
    expect(await one.has(host.root)).toBe(true);
    expect(await one.has(other.root)).toBe(false);
    await validateImage(one, name);

    const picked = await store();
    await pull(picked, name, { platform: { os: 'linux', architecture: otherArch } });
    expect(await picked.has(other.root)).toBe(true);
    expect(await picked.has(host.root)).toBe(false);

    const all = await store();
    const r3 = await pull(all, name, { allPlatforms: true });
    expect(r3.copied).toBe(7); // index + 2 × (manifest, config, layer)

    const e = await pull(await store(), name, { platform: { os: 'linux', architecture: 's390x' } }).catch((x: unknown) => x);
    expect(isBerthError(e, 'NOT_FOUND'), String(e)).toBe(true);

    // Without --all-platforms only this host's manifest goes up, under the tag.
    const only = await push(s, `${reg.host}/multi/host-only:1`, { source: name });
    expect(only.digest).toBe(host.root.digest);
  });

  it('mounts blobs from another repository of the same registry instead of uploading', async () => {
    const s = await store();
    const img = await randomImage(s, { layers: 2, layerSize: 50_000, name: `${proxy.host}/mount/one:1` });
    await push(s, img.name, fast);
    await tagImage(s, `${proxy.host}/mount/two:1`, img.root);
    proxy.requests.length = 0;
    const r = await push(s, `${proxy.host}/mount/two:1`, fast);
    expect(r.digest).toBe(img.root.digest);
    const mounts = proxy.requests.filter((q) => q.method === 'POST' && q.url.includes('mount='));
    expect(mounts.length).toBe(3);
    expect(proxy.requests.filter((q) => q.method === 'PATCH' || (q.method === 'PUT' && q.url.includes('/blobs/')))).toEqual([]);
    await validateImage(await (async () => {
      const t = await store();
      await pull(t, `${proxy.host}/mount/two:1`, fast);
      return t;
    })(), `${proxy.host}/mount/two:1`);
  });

  it('uploads in PATCH chunks and falls back to one PUT when the registry refuses chunks', async () => {
    const s = await store();
    const img = await randomImage(s, { layers: 1, layerSize: 300_000, gzip: false, name: `${proxy.host}/chunks/a:1` });
    await push(s, img.name, { ...fast, chunkSize: 100_000, compression: 'none' });
    const patches = proxy.requests.filter((q) => q.method === 'PATCH');
    expect(patches.map((q) => q.headers['content-range'])).toEqual(['0-99999', '100000-199999', '200000-299999', '300000-' + (img.layers[0]!.desc.size - 1)]);
    const t = await store();
    await pull(t, img.name, fast);
    await validateImage(t, img.name);

    const s2 = await store();
    const img2 = await randomImage(s2, { layers: 1, layerSize: 300_000, gzip: false, name: `${proxy.host}/chunks/b:1` });
    proxy.requests.length = 0;
    proxy.rules.push({ method: 'PATCH', path: /\/blobs\/uploads\//, action: { kind: 'status', status: 405 }, times: 5 });
    const r = await push(s2, img2.name, { ...fast, chunkSize: 100_000, compression: 'none' });
    expect(r.digest).toBe(img2.root.digest);
    expect(proxy.requests.filter((q) => q.method === 'PUT' && q.url.includes('digest=')).length).toBeGreaterThanOrEqual(1);
    const t2 = await store();
    await pull(t2, img2.name, fast);
    await validateImage(t2, img2.name);
  });

  it('retries an upload the registry fails with a 502, in a fresh upload session', async () => {
    const s = await store();
    const img = await randomImage(s, { layers: 1, layerSize: 400_000, gzip: false, name: `${proxy.host}/reset/a:1` });
    proxy.rules.push({ method: 'PUT', path: /\/blobs\/uploads\/.*digest=/, action: { kind: 'status', status: 502 } });
    const r = await push(s, img.name, { ...fast, compression: 'none' });
    expect(r.digest).toBe(img.root.digest);
    expect(proxy.requests.filter((q) => q.method === 'POST').length).toBeGreaterThanOrEqual(3);
  });
});
