/** berth import: a rootfs tarball becomes a one-layer image; --change parses docker's forms. */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyChanges } from '../../src/import/changes.js';
import { ContentStore } from '../../src/store/store.js';
import { getImage } from '../../src/store/images.js';
import { runBerth, snapshotTree, testdir, validateImage } from '../kit/index.js';

describe('--change', () => {
  it('parses exec and shell forms, ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME', () => {
    const c = applyChanges({ Env: ['PATH=/bin'] }, [
      'CMD ["/bin/app", "--flag"]',
      'ENTRYPOINT /entry.sh arg',
      'ENV A=1 B="two words" PATH=/usr/bin',
      'ENV LEGACY some value',
      'LABEL org.x="y z" k=v',
      'EXPOSE 80 53/udp 8000-8001',
      'USER app:app',
      'WORKDIR /srv',
      'WORKDIR data',
      'VOLUME ["/v1", "/v2"]',
      'STOPSIGNAL SIGINT',
    ]);
    expect(c.Cmd).toEqual(['/bin/app', '--flag']);
    expect(c.Entrypoint).toEqual(['/bin/sh', '-c', '/entry.sh arg']);
    expect(c.Env).toEqual(['PATH=/usr/bin', 'A=1', 'B=two words', 'LEGACY=some value']);
    expect(c.Labels).toEqual({ 'org.x': 'y z', k: 'v' });
    expect(Object.keys(c.ExposedPorts!)).toEqual(['80/tcp', '53/udp', '8000/tcp', '8001/tcp']);
    expect(c.User).toBe('app:app');
    expect(c.WorkingDir).toBe('/srv/data');
    expect(Object.keys(c.Volumes!)).toEqual(['/v1', '/v2']);
    expect(c.StopSignal).toBe('SIGINT');
  });

  it('refuses what docker refuses', () => {
    expect(() => applyChanges({}, ['RUN echo hi'])).toThrow(/RUN is not supported/);
    expect(() => applyChanges({}, ['EXPOSE 99999'])).toThrow(/out of range/);
    expect(() => applyChanges({}, ['ENV A="unterminated'])).toThrow(/unterminated/);
    expect(() => applyChanges({}, ['CMD ["a", 1]'])).toThrow(/JSON array of strings/);
  });
});

describe('berth import', () => {
  it('imports plain and gzip tarballs (file and stdin) that umoci can unpack', async () => {
    const d = await testdir();
    const root = join(d, 'root');
    await mkdir(join(d, 'rootfs/etc'), { recursive: true });
    await writeFile(join(d, 'rootfs/etc/hello'), 'hello from import\n');
    execFileSync('tar', ['-C', join(d, 'rootfs'), '-cf', join(d, 'rootfs.tar'), '.']);
    execFileSync('sh', ['-c', `gzip -c ${d}/rootfs.tar > ${d}/rootfs.tgz`]);
    const r1 = await runBerth(['import', '-c', 'CMD ["/bin/sh"]', '-c', 'ENV A=b', '-c', 'EXPOSE 8080', '-m', 'my message', join(d, 'rootfs.tar'), 'imp/plain:1'], { root });
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stdout).toMatch(/^sha256:[a-f0-9]{64}\n$/);
    const r2 = await runBerth(['import', '--platform', 'linux/arm64', '-', 'imp/gz:1'], { root, input: await readFile(join(d, 'rootfs.tgz')) });
    expect(r2.code, r2.stderr).toBe(0);
    const store = await ContentStore.open(root);
    const plain = await getImage(store, 'imp/plain:1');
    expect(plain.configDesc.digest).toBe(r1.stdout.trim());
    expect(plain.config.config).toMatchObject({ Cmd: ['/bin/sh'], Env: ['A=b'], ExposedPorts: { '8080/tcp': {} } });
    expect(plain.config.history![0]!.comment).toBe('my message');
    expect(plain.manifest.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    await validateImage(store, 'imp/plain:1');
    const gz = await getImage(store, 'imp/gz:1', { os: 'linux', architecture: 'arm64' });
    expect(gz.config.architecture).toBe('arm64');
    expect(gz.manifest.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    // Same content, so the same diff_id whichever the compression.
    expect(gz.config.rootfs.diff_ids).toEqual(plain.config.rootfs.diff_ids);
    execFileSync('umoci', ['unpack', '--image', `${store.contentDir}:docker.io/imp/plain:1`, join(d, 'bundle')]);
    expect(await readFile(join(d, 'bundle/rootfs/etc/hello'), 'utf8')).toBe('hello from import\n');
  });

  it('refuses a non-tar, a bad --change and a bad name, leaving the store as it was', async () => {
    const d = await testdir();
    const root = join(d, 'root');
    await ContentStore.open(root);
    const before = await snapshotTree(join(root, 'content'));
    await writeFile(join(d, 'junk'), 'definitely not a tarball\n'.repeat(100));
    const r = await runBerth(['--progress', 'none', 'import', join(d, 'junk'), 'imp/x:1'], { root });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^berth: .*junk: not a tar archive/);
    const c = await runBerth(['import', '-c', 'FROB x', join(d, 'junk'), 'imp/x:1'], { root });
    expect(c.stderr).toMatch(/FROB is not supported/);
    const n = await runBerth(['import', join(d, 'junk'), 'Bad Name'], { root });
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/invalid reference/);
    expect(await snapshotTree(join(root, 'content'))).toEqual(before);
    expect(await readdir(join(root, 'ingest'))).toEqual([]);
  });
});

describe('berth save and load (CLI)', () => {
  it('save to stdout and -o give the same bytes; load prints the names; --format oci', async () => {
    const d = await testdir();
    const root = join(d, 'root');
    await mkdir(join(d, 'rootfs'));
    await writeFile(join(d, 'rootfs/f'), 'x');
    execFileSync('tar', ['-C', join(d, 'rootfs'), '-cf', join(d, 'r.tar'), '.']);
    expect((await runBerth(['import', join(d, 'r.tar'), 'cli/a:1'], { root })).code).toBe(0);
    const o = await runBerth(['save', '-o', join(d, 'a.tar'), 'cli/a:1', '--progress', 'json'], { root });
    expect(o.code, o.stderr).toBe(0);
    expect(o.stderr.trim().split('\n').map((l) => JSON.parse(l).type)).toContain('blob-done');
    const { spawnSync } = await import('node:child_process');
    const s = spawnSync(process.execPath, ['bin/berth.js', '--root', root, 'save', 'cli/a:1'], { maxBuffer: 64 << 20 });
    expect(s.status).toBe(0);
    expect(Buffer.compare(s.stdout, await readFile(join(d, 'a.tar')))).toBe(0);
    const l = await runBerth(['load', '-i', join(d, 'a.tar')], { root: join(d, 'root2') });
    expect(l.stdout).toBe('Loaded image: cli/a:1\n');
    const oci = await runBerth(['save', '--format', 'oci', '-o', join(d, 'o.tar'), 'cli/a:1'], { root });
    expect(oci.code, oci.stderr).toBe(0);
    const list = execFileSync('tar', ['-tf', join(d, 'o.tar')]).toString().trim().split('\n');
    expect(list).not.toContain('manifest.json');
    expect(list).toContain('index.json');
    const missing = await runBerth(['save', '-o', join(d, 'm.tar'), 'cli/nope:1'], { root });
    expect(missing.code).toBe(3);
    expect(await readdir(d)).not.toContain('m.tar');
  });
});
