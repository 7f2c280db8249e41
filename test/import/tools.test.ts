/**
 * Archives written by real tools (skopeo, umoci, ctr) load into berth, and berth's archives load
 * into them, with digests compared.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { getImage } from '../../src/store/images.js';
import { loadArchive } from '../../src/import/load.js';
import { saveImagesToFile } from '../../src/import/save.js';
import { randomImage, testdir, validateImage, type RandomImage } from '../kit/index.js';
import { startContainerd, type Containerd } from '../kit/containerd.js';

const run = async (cmd: string, args: string[]) => (await promisify(execFile)(cmd, args, { timeout: 60_000, maxBuffer: 64 << 20 })).stdout;

async function ociIndex(dir: string): Promise<{ manifests: { digest: string; annotations?: Record<string, string> }[] }> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
}

async function source(d: string): Promise<{ store: ContentStore; one: RandomImage; two: RandomImage }> {
  const store = await ContentStore.open(join(d, 'src'));
  const one = await randomImage(store, { name: 'berth.test/one:v1', layers: 3, layerSize: 100_000 });
  const two = await randomImage(store, { name: 'berth.test/two:latest', layers: 2, gzip: false, layerSize: 50_000 });
  return { store, one, two };
}

describe('archives from skopeo', () => {
  it('loads a docker-archive with several tags (skopeo --additional-tag)', async () => {
    const d = await testdir();
    const { store, one } = await source(d);
    const f = join(d, 'docker.tar');
    await run('skopeo', ['copy', '-q', `oci:${store.contentDir}:${one.name}`, `docker-archive:${f}:berth.test/one:v1`, '--additional-tag', 'berth.test/one:extra', '--additional-tag', 'other.test/x/y:z']);
    const b = await ContentStore.open(join(d, 'b'));
    const r = await loadArchive(b, { path: f });
    expect(r.images).toHaveLength(1);
    expect(r.images[0]!.names.sort()).toEqual(['berth.test/one:extra', 'berth.test/one:v1', 'other.test/x/y:z']);
    for (const n of r.images[0]!.names) {
      const v = await getImage(b, n);
      // The config bytes are kept: docker's image id (the config digest) is the same.
      expect(v.configDesc.digest).toBe(one.manifest.config.digest);
      expect(v.config.rootfs.diff_ids).toEqual(one.config.rootfs.diff_ids);
      await validateImage(b, n);
    }
  });

  it('loads an oci-archive', async () => {
    const d = await testdir();
    const { store, two } = await source(d);
    const f = join(d, 'oci.tar');
    await run('skopeo', ['copy', '-q', `oci:${store.contentDir}:${two.name}`, `oci-archive:${f}:berth.test/two:v2`]);
    const b = await ContentStore.open(join(d, 'b'));
    const r = await loadArchive(b, { path: f });
    expect(r.images[0]!.names).toEqual(['berth.test/two:v2']);
    // skopeo compresses the uncompressed layers for an OCI destination: the config stays.
    const v = await getImage(b, 'berth.test/two:v2');
    expect(v.manifest.layers.every((l) => l.mediaType.endsWith('+gzip'))).toBe(true);
    expect(v.config.rootfs.diff_ids).toEqual(two.config.rootfs.diff_ids);
    await validateImage(b, 'berth.test/two:v2');
  });

  it('reads berth save output (docker-archive: and oci-archive:) with the same digests', async () => {
    const d = await testdir();
    const { store, one, two } = await source(d);
    const dockerTar = join(d, 'b.tar');
    const ociTar = join(d, 'o.tar');
    await saveImagesToFile(store, [one.name, two.name], dockerTar);
    await saveImagesToFile(store, [one.name, two.name], ociTar, { format: 'oci' });
    for (const [i, img] of [one, two].entries()) {
      const out = join(d, `out-docker-${i}`);
      await run('skopeo', ['copy', '-q', `docker-archive:${dockerTar}:${img.name}`, `oci:${out}:x`]);
      const cfg = JSON.parse(await run('skopeo', ['inspect', '--config', '--raw', `oci:${out}:x`]));
      expect(cfg.rootfs.diff_ids).toEqual(img.config.rootfs.diff_ids);
      // skopeo's docker-archive: reader keeps berth's config bytes (docker's image id); its
      // conversion to an OCI destination re-marshals them, so ask the archive reader itself.
      const raw = JSON.parse(await run('skopeo', ['inspect', '--raw', `docker-archive:${dockerTar}:${img.name}`]));
      expect(raw.config.digest).toBe(img.manifest.config.digest);

      const out2 = join(d, `out-oci-${i}`);
      await run('skopeo', ['copy', '-q', '--dest-oci-accept-uncompressed-layers', `oci-archive:${ociTar}:${img.name}`, `oci:${out2}:x`]);
      expect((await ociIndex(out2)).manifests[0]!.digest).toBe(img.root.digest);
    }
  });
});

describe('umoci', () => {
  it('loads a layout made by umoci (tarred and as a directory)', async () => {
    const d = await testdir();
    const layout = join(d, 'layout');
    await run('umoci', ['init', '--layout', layout]);
    await run('umoci', ['new', '--image', `${layout}:umoci.test/app:1`]);
    await mkdir(join(d, 'ins'));
    await run('sh', ['-c', `echo hello > ${d}/ins/hello.txt`]);
    await run('umoci', ['insert', '--image', `${layout}:umoci.test/app:1`, join(d, 'ins/hello.txt'), '/hello.txt']);
    await run('umoci', ['config', '--image', `${layout}:umoci.test/app:1`, '--config.cmd', '/bin/true']);
    const want = (await ociIndex(layout)).manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'umoci.test/app:1')!.digest;
    await run('tar', ['-C', layout, '-cf', join(d, 'u.tar'), '.']);
    for (const input of [{ path: join(d, 'u.tar') }, { dir: layout }]) {
      const b = await ContentStore.open(join(d, `b${'dir' in input ? 'd' : 't'}`));
      const r = await loadArchive(b, input);
      expect(r.images[0]!.names).toEqual(['umoci.test/app:1']);
      expect(r.images[0]!.root.digest).toBe(want);
      await validateImage(b, 'umoci.test/app:1');
      expect((await getImage(b, 'umoci.test/app:1')).config.config?.Cmd).toEqual(['/bin/true']);
    }
  });

  it('umoci unpacks berth save --format oci output', async () => {
    const d = await testdir();
    const { store, one } = await source(d);
    await saveImagesToFile(store, [one.name], join(d, 'o.tar'), { format: 'oci' });
    await mkdir(join(d, 'layout'));
    await run('tar', ['-C', join(d, 'layout'), '-xf', join(d, 'o.tar')]);
    const stat = JSON.parse(await run('umoci', ['stat', '--json', '--image', `${join(d, 'layout')}:${one.name}`]));
    expect(stat.history).toHaveLength(3);
    await run('umoci', ['unpack', '--image', `${join(d, 'layout')}:${one.name}`, join(d, 'bundle')]);
    const names = await run('find', [join(d, 'bundle/rootfs'), '-type', 'f']);
    expect(names.trim().split('\n')).toHaveLength(3);
  });
});

describe('containerd (ctr)', () => {
  let c: Containerd;
  let dir: string;
  beforeAll(async () => {
    const { mkdtemp } = await import('node:fs/promises');
    dir = await mkdtemp('/tmp/berth-ctr-');
    c = await startContainerd(dir);
  });
  afterAll(async () => {
    await c?.stop();
    const { rm } = await import('node:fs/promises');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('ctr images import reads berth save, and berth load reads ctr images export', async () => {
    const d = await testdir();
    const { store, one, two } = await source(d);
    await saveImagesToFile(store, [one.name, two.name], join(d, 'b.tar'));
    await c.ctr(['images', 'import', '--no-unpack', join(d, 'b.tar')]);
    const ls = await c.ctr(['images', 'ls']);
    for (const img of [one, two]) {
      const line = ls.split('\n').find((l) => l.startsWith(img.name + ' '));
      expect(line, ls).toBeDefined();
      expect(line).toContain(img.root.digest);
    }
    await c.ctr(['images', 'export', join(d, 'ctr.tar'), one.name, two.name]);
    const b = await ContentStore.open(join(d, 'b'));
    const r = await loadArchive(b, { path: join(d, 'ctr.tar') });
    expect(r.images.map((i) => i.names).flat().sort()).toEqual([one.name, two.name].sort());
    for (const img of [one, two]) {
      expect((await getImage(b, img.name)).root.digest).toBe(img.root.digest);
      await validateImage(b, img.name);
    }
  });
});
