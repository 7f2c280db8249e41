/**
 * Push compresses (issue #9 item 4): uncompressed layers go up gzip (or zstd) with their diff_ids,
 * the compressed blob is kept and reused; save --compress and import --compress. Real registry,
 * skopeo as the peer that reads what berth wrote.
 */
import { execFileSync } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { runBerth, startRegistry, testdir, validateImage, type RunningRegistry } from '../kit/index.js';

let reg: RunningRegistry;
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => reg?.stop());

/** A compressible rootfs tarball: the repository's test sources, several times over. */
async function plainTar(dir: string): Promise<string> {
  const tar = join(dir, 'root.tar');
  const src = join(import.meta.dirname, '..');
  execFileSync('tar', ['-C', src, '--exclude=buildkit-samples', '-cf', tar, 'kit', 'fixtures', 'registry', 'import', 'archive']);
  return tar;
}

function rawManifest(ref: string): { mediaType: string; config: { digest: string }; layers: { mediaType: string; digest: string; size: number }[] } {
  return JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' }));
}

const events = (stderr: string) => stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; text?: string });
const blobCount = async (root: string) => (await readdir(join(root, 'content', 'blobs', 'sha256'))).length;

describe('compression', () => {
  it('push sends gzip of a plain layer, keeps the diff_id, stores the blob and does not compress twice', async () => {
    const root = await testdir();
    const tar = await plainTar(await testdir());
    const plainSize = (await stat(tar)).size;
    expect((await runBerth(['import', tar, 'cmp:1'], { root })).code).toBe(0);
    const id = (await runBerth(['inspect', '-f', '{{.Id}}', 'cmp:1'], { root })).stdout.trim();
    const name = `${reg.host}/cmp/a:1`;
    expect((await runBerth(['tag', 'cmp:1', name], { root })).code).toBe(0);
    let r = await runBerth(['--progress', 'json', 'push', name], { root });
    expect(r.code, r.stderr).toBe(0);
    expect(events(r.stderr).filter((e) => e.type === 'message' && /^compressing /.test(e.text!))).toHaveLength(1);
    let m = rawManifest(name);
    expect(m.layers.map((l) => l.mediaType)).toEqual([MediaType.OCI_LAYER_GZIP]);
    expect(m.layers[0]!.size).toBeLessThan(plainSize / 2);
    expect(m.config.digest).toBe(id);
    // another store pulls it: the diff_id of the gzip layer is the plain tar's
    const other = await testdir();
    expect((await runBerth(['pull', name], { root: other })).code).toBe(0);
    await validateImage(await ContentStore.open(other), name);
    expect((await runBerth(['inspect', '-f', '{{.Id}}', name], { root: other })).stdout.trim()).toBe(id);
    // the compressed blob is in the store, survives a prune, and the next push reuses it
    const blobs = await blobCount(root);
    expect(blobs).toBe(5); // plain layer, manifest, config; gzip layer, gzip manifest
    expect((await runBerth(['image', 'prune'], { root })).stdout).toBe('Total reclaimed space: 0B\n');
    const name2 = `${reg.host}/cmp/b:1`;
    expect((await runBerth(['tag', 'cmp:1', name2], { root })).code).toBe(0);
    r = await runBerth(['--progress', 'json', 'push', name2], { root });
    expect(r.code, r.stderr).toBe(0);
    expect(events(r.stderr).filter((e) => e.type === 'message' && /^compressing /.test(e.text!))).toEqual([]);
    expect(await blobCount(root)).toBe(blobs);
    expect(rawManifest(name2).layers).toEqual(m.layers);
    // zstd at a level, and none
    const z = `${reg.host}/cmp/z:1`;
    expect((await runBerth(['tag', 'cmp:1', z], { root })).code).toBe(0);
    r = await runBerth(['push', '--compression-format', 'zstd', '--compression-level', '9', z], { root });
    expect(r.code, r.stderr).toBe(0);
    m = rawManifest(z);
    expect(m.layers.map((l) => l.mediaType)).toEqual([MediaType.OCI_LAYER_ZSTD]);
    expect(m.config.digest).toBe(id);
    const n = `${reg.host}/cmp/n:1`;
    expect((await runBerth(['tag', 'cmp:1', n], { root })).code).toBe(0);
    expect((await runBerth(['push', '--compression-format', 'none', n], { root })).code).toBe(0);
    expect(rawManifest(n).layers.map((l) => [l.mediaType, l.size])).toEqual([[MediaType.OCI_LAYER, plainSize]]);
    // a bad level: one line, exit 2
    r = await runBerth(['push', '--compression-level', '12', n], { root });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^berth: --compression-level 12 is out of range for gzip: give 1 to 9\n$/);
  });

  it('save --format oci --compress and import --compress store and write gzip layers', async () => {
    const root = await testdir();
    const d = await testdir();
    const tar = await plainTar(d);
    const plainSize = (await stat(tar)).size;
    let r = await runBerth(['import', '--compress', tar, 'small:1'], { root });
    expect(r.code, r.stderr).toBe(0);
    const store = await ContentStore.open(root);
    await validateImage(store, 'small:1');
    const i = JSON.parse((await runBerth(['inspect', 'small:1'], { root })).stdout)[0];
    expect(i.Manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([MediaType.OCI_LAYER_GZIP]);
    expect(i.Size).toBe(plainSize); // docker's SIZE stays the unpacked size
    expect(await blobCount(root)).toBe(3); // no plain layer left behind

    expect((await runBerth(['import', tar, 'big:1'], { root })).code).toBe(0);
    r = await runBerth(['save', '--format', 'oci', '--compress', '-o', join(d, 'o.tar'), 'big:1'], { root });
    expect(r.code, r.stderr).toBe(0);
    expect((await stat(join(d, 'o.tar'))).size).toBeLessThan(plainSize / 2);
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${join(d, 'o.tar')}`], { encoding: 'utf8' }));
    expect(raw.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([MediaType.OCI_LAYER_GZIP]);
    const other = await testdir();
    r = await runBerth(['load', '-i', join(d, 'o.tar')], { root: other });
    expect(r.code, r.stderr).toBe(0);
    await validateImage(await ContentStore.open(other), 'big:1');
    expect((await runBerth(['inspect', '-f', '{{.Id}}', 'big:1'], { root: other })).stdout).toBe((await runBerth(['inspect', '-f', '{{.Id}}', 'big:1'], { root })).stdout);
  });
});
