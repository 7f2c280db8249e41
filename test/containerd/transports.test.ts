/**
 * `berth copy` between a real registry, OCI layouts, archives, containerd and the store, with
 * skopeo reading what berth wrote (and the other way round).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { startContainerd, type Containerd } from '../kit/containerd.js';
import { randomImage, runBerth, startRegistry, testdir, validateImage, type RandomImage, type RunningRegistry } from '../kit/index.js';

const run = promisify(execFile);

let reg: RunningRegistry;
let c: Containerd;
let cdir: string;
let root: string;
let img: RandomImage;

async function copy(src: string, dst: string, opts: { root?: string } = {}) {
  const r = await runBerth(['copy', '--format', 'json', '--progress', 'none', '--containerd-address', c.sock, src, dst], { root: opts.root ?? root, timeoutMs: 120_000 });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { name: string | null; digest: string; sent: { blobs: number; bytes: number }; existing: { blobs: number; bytes: number } };
}

async function skopeoDigest(loc: string): Promise<string> {
  const out = (await run('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', loc], { timeout: 60_000 })).stdout.trim();
  return out;
}

beforeAll(async () => {
  reg = await startRegistry();
  cdir = await mkdtemp('/tmp/berth-ctrd-t-');
  c = await startContainerd(cdir);
  root = join(await testdir(), 'root');
  const store = await ContentStore.open(root);
  img = await randomImage(store, { name: 'berth.test/tr:v1', layers: 3, layerSize: 300_000 });
}, 60_000);

afterAll(async () => {
  await c?.stop();
  await reg?.stop();
  await rm(cdir, { recursive: true, force: true }).catch(() => {});
}, 60_000);

describe('berth copy between transports', () => {
  it('store -> registry -> registry without the store, then registry -> containerd', async () => {
    const up = await copy('berth.test/tr:v1', `docker://${reg.host}/a/tr:v1`);
    expect(up.sent.blobs).toBe(5);
    // Registry to registry: a root that does not exist stays absent (the store is never opened).
    const nostore = join(await testdir(), 'never');
    const r2r = await copy(`docker://${reg.host}/a/tr:v1`, `docker://${reg.host}/b/tr:v2`, { root: nostore });
    expect(r2r.digest).toBe(img.root.digest);
    await expect(stat(nostore)).rejects.toThrow();
    expect(await skopeoDigest(`docker://${reg.host}/b/tr:v2`)).toBe(img.root.digest);
    // Again: every blob is there.
    const again = await copy(`docker://${reg.host}/a/tr:v1`, `docker://${reg.host}/b/tr:v2`, { root: nostore });
    expect(again.sent.blobs).toBe(0);

    const into = await copy(`docker://${reg.host}/b/tr:v2`, 'containerd:k8s.io/berth.test/tr:v2', { root: nostore });
    expect(into.digest).toBe(img.root.digest);
    expect((await run('ctr', ['-a', c.sock, '-n', 'k8s.io', 'images', 'check'], { timeout: 60_000 })).stdout).toMatch(/berth\.test\/tr:v2\s.*complete \(4\/4\)/);
    // containerd -> registry reads through the content API.
    await copy('containerd:k8s.io/berth.test/tr:v2', `docker://${reg.host}/c/tr:v3`, { root: nostore });
    expect(await skopeoDigest(`docker://${reg.host}/c/tr:v3`)).toBe(img.root.digest);
  }, 180_000);

  it('registry -> oci-archive, oci dir and docker-archive that skopeo reads; skopeo archives copy back in', async () => {
    const d = await testdir();
    await copy('berth.test/tr:v1', `docker://${reg.host}/a/tr:v1`);
    await copy(`docker://${reg.host}/a/tr:v1`, `oci-archive:${join(d, 'b.tar')}`);
    await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/a/tr:v1`, `oci-archive:${join(d, 's.tar')}`], { timeout: 60_000 });
    expect(await skopeoDigest(`oci-archive:${join(d, 'b.tar')}`)).toBe(img.root.digest);
    expect(await skopeoDigest(`oci-archive:${join(d, 's.tar')}`)).toBe(img.root.digest);

    await copy(`oci-archive:${join(d, 's.tar')}`, `oci:${join(d, 'layout')}:v1`);
    expect(await skopeoDigest(`oci:${join(d, 'layout')}:v1`)).toBe(img.root.digest);
    // Without a REF the layout's ref.name goes along.
    await copy(`oci:${join(d, 'layout')}:v1`, `oci-archive:${join(d, 'again.tar')}`);
    expect(await skopeoDigest(`oci-archive:${join(d, 'again.tar')}:v1`)).toBe(img.root.digest);
    await copy(`oci:${join(d, 'layout')}:v1`, `docker-archive:${join(d, 'dk.tar')}:berth.test/dk:v1`);
    // skopeo reads docker-archive through manifest.json (its digest is of a manifest it makes).
    const layers = (await run('skopeo', ['inspect', '--format', '{{len .Layers}}', `docker-archive:${join(d, 'dk.tar')}`], { timeout: 60_000 })).stdout.trim();
    expect(layers).toBe('3');

    // skopeo's docker-archive is docker's old format (no index.json): berth makes its manifest.
    await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/a/tr:v1`, `docker-archive:${join(d, 'sk-docker.tar')}:berth.test/skd:v1`], { timeout: 60_000 });
    const r2 = join(d, 'root2');
    const fromSk = await copy(`docker-archive:${join(d, 'sk-docker.tar')}`, 'berth.test/skd:v1', { root: r2 });
    expect(fromSk.name).toBe('berth.test/skd:v1');
    await validateImage(await ContentStore.open(r2), 'berth.test/skd:v1');
    const toCtr = await copy(`docker-archive:${join(d, 'sk-docker.tar')}:berth.test/skd:v1`, 'containerd:berth-test/berth.test/skd:v1');
    expect(toCtr.digest).toBe(fromSk.digest);
    expect((await run('ctr', ['-a', c.sock, '-n', 'berth-test', 'images', 'check'], { timeout: 60_000 })).stdout).toMatch(/berth\.test\/skd:v1\s.*complete \(4\/4\)/);
  }, 180_000);
});
