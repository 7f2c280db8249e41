/**
 * `berth build --check-reproducible` through the CLI with the built-in builder (real runc):
 * a Dockerfile whose output depends only on its inputs matches (exit 0, both digests equal);
 * one that writes random bytes differs, and the report names the layer, the file and that its
 * content differs (exit 5); SOURCE_DATE_EPOCH comes from the build arg, the environment, else 0.
 * The difference finder also names mode and mtime differences between two hand-made images.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { storeCorpusBase } from '../corpus.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { imageDifference } from '../../../src/build/native/reproducible.js';
import { getImage, tagImage } from '../../../src/store/images.js';
import { ContentStore } from '../../../src/store/store.js';
import { sha256 } from '../../../src/oci/digest.js';
import { runBerth, tarBytes, testdir } from '../../kit/index.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('build --check-reproducible', () => {
  let dir: string;
  let root: string;
  beforeAll(async () => {
    dir = await testdir('berth-repro-');
    root = join(dir, 'root');
    const layout = join(dir, 'base-layout');
    await storeCorpusBase(await ContentStore.open(root), layout);
  }, 60_000);

  it('a deterministic Dockerfile matches (exit 0); the first build is tagged', async () => {
    const ctx = join(dir, 'ok');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'a.txt'), 'a\n');
    await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nCOPY a.txt /a.txt\nRUN echo fixed > /fixed && touch /fixed\n');
    const r = await runBerth(['build', '--builder', 'builtin', '--check-reproducible', '-q', '-t', 'repro-ok', ctx], { root, env: { SOURCE_DATE_EPOCH: '' }, timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^reproducible: both builds gave sha256:[0-9a-f]{64} \(image sha256:[0-9a-f]{64}\), SOURCE_DATE_EPOCH=0 \(default: /);
    const store = await ContentStore.open(root);
    const img = await getImage(store, 'repro-ok');
    expect(img.config.created).toBe('1970-01-01T00:00:00Z');
    // The epoch from the environment is used and said.
    const env = await runBerth(['build', '--builder', 'builtin', '--check-reproducible', '-q', ctx], { root, env: { SOURCE_DATE_EPOCH: '1700000000' }, timeoutMs: 120_000 });
    expect(env.code).toBe(0);
    expect(env.stdout).toContain('SOURCE_DATE_EPOCH=1700000000 (from the environment)');
  }, 240_000);

  it('random bytes in a RUN: not reproducible, names layer, file and content; exit 5', async () => {
    const ctx = join(dir, 'rand');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), 'FROM base\nRUN echo same > /same\nRUN head -c 16 /dev/urandom > /r\n');
    const r = await runBerth(['build', '--builder', 'builtin', '--check-reproducible', '-q', '--build-arg', 'SOURCE_DATE_EPOCH=1600000000', ctx], { root, timeoutMs: 120_000 });
    expect(r.code).toBe(5);
    const store = await ContentStore.open(root);
    const base = await getImage(store, 'base');
    const n = base.manifest.layers.length + 1; // the second RUN's layer
    expect(r.stdout.split('\n')[0]).toMatch(new RegExp(`^not reproducible: layer ${n}, /r: content differ \\(content sha256:[0-9a-f]{12} vs sha256:[0-9a-f]{12}\\)$`));
    expect(r.stdout).toContain('SOURCE_DATE_EPOCH=1600000000 (from the build arg)');
  }, 240_000);

  it('names a mode or mtime difference in a layer', async () => {
    const store = await ContentStore.open(join(dir, 'hand'));
    const image = async (name: string, mode: number, mtime: number) => {
      const tar = tarBytes([{ name: 'etc/x', type: '0', data: 'same', mode, mtime }]);
      const gz = gzipSync(tar);
      const layer = await store.putBytes(gz);
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(tar)] } }));
      const c = await store.putBytes(config);
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: c.digest, size: c.size }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }] }));
      const m = await store.putBytes(manifest);
      await tagImage(store, name, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.size });
      return getImage(store, name);
    };
    const a = await image('a', 0o644, 100);
    const b = await image('b', 0o600, 100);
    const c = await image('c', 0o644, 200);
    expect(await imageDifference(store, a, b)).toEqual({ layer: 0, path: 'etc/x', what: ['mode'], detail: 'mode 0644 vs 0600' });
    expect(await imageDifference(store, a, c)).toEqual({ layer: 0, path: 'etc/x', what: ['mtime'], detail: 'mtime 100 vs 200' });
    expect(await imageDifference(store, a, a)).toBeUndefined();
  });
});
