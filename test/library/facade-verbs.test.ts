/**
 * The facade methods and options the CLI's routing added: platform strings and compression on
 * save/import/load/copy, familiar names for load and ps, `versions()`, and for run/create/exec the
 * `onWarning` and `forwardSignals` hooks, env files, network validation, and an aborted run that
 * leaves nothing. Real archives and real runc (container tests need root), through dist/.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Berth } from '../../src/index.js';
import { errorCode } from '../kit/index.js';
import pkg from '../../package.json' with { type: 'json' };
import { busyboxArchive } from './busybox-archive.js';

const { openBerth, isBerthError } = (await import(pathToFileURL(fileURLToPath(new URL('../../dist/index.js', import.meta.url))).href)) as typeof import('../../src/index.js');
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('test/library/facade-verbs: container tests skipped: runc needs root');

let dir = '';
let archive = '';
let rootfsTar = '';
let berth: Berth;

const code = errorCode;

beforeAll(async () => {
  dir = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'berth-facade-verbs-'));
  archive = join(dir, 'busybox.tar');
  await busyboxArchive(archive);
  const { execFileSync } = await import('node:child_process');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(dir, 'rootfs', 'etc'), { recursive: true });
  await writeFile(join(dir, 'rootfs', 'etc', 'hello'), 'hi\n'.repeat(1000));
  rootfsTar = join(dir, 'rootfs.tar');
  execFileSync('tar', ['-C', join(dir, 'rootfs'), '-cf', rootfsTar, '.']);
  berth = await openBerth({ root: join(dir, 'root') });
  await berth.load(archive);
});

afterAll(async () => {
  if (!dir) return;
  if (isRoot && berth) {
    for (const c of await berth.containers().catch(() => [])) await (await berth.container(c.record.id)).remove({ force: true }).catch(() => {});
  }
  await berth?.close();
  const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.split(' ')[1]?.startsWith(dir));
  if (mounts.length === 0) await rm(dir, { recursive: true, force: true });
});

describe('Berth: platform strings, compression, familiar names, versions', () => {
  it('import takes a platform string and compression; save and load take them too', async () => {
    const r = await berth.import(rootfsTar, { name: 'example.test/arm:1', platform: 'linux/arm64', compress: 'zstd', compressionLevel: 3 });
    expect(r.layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    const img = await berth.image('example.test/arm:1');
    const cfg = await img.config({ platform: { os: 'linux', architecture: 'arm64' } });
    expect([cfg.os, cfg.architecture]).toEqual(['linux', 'arm64']);

    // a plain layer saved with compress: gzip goes into the archive compressed
    const plain = await berth.import(rootfsTar, { name: 'example.test/plain:1' });
    expect(plain.layer.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    const saved = join(dir, 'plain-gzip.tar');
    await berth.save('example.test/plain:1', saved, { format: 'oci', compress: 'gzip', compressionLevel: 1, platform: 'linux/arm64' });
    await using other = await openBerth({ root: join(dir, 'other') });
    const loaded = await other.load(saved, { platform: 'linux/arm64' });
    expect(loaded.images[0]!.names).toEqual(['example.test/plain:1']);
    expect(loaded.images[0]!.familiarNames).toEqual(['example.test/plain:1']);
    const view = await (await other.image('example.test/plain:1')).inspect();
    expect(view.manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip']);

    // docker.io names come back as docker prints them
    const bb = await other.load(archive);
    expect(bb.images[0]!.names).toEqual(['docker.io/library/busybox:latest']);
    expect(bb.images[0]!.familiarNames).toEqual(['busybox:latest']);

    // a bad platform string is one INVALID_ARGUMENT, before anything is written or created
    const out = join(dir, 'never.tar');
    expect(await code(berth.save('busybox', out, { platform: 'linux//arm64' }))).toBe('INVALID_ARGUMENT');
    expect(existsSync(out)).toBe(false);
    const fresh = await openBerth({ root: join(dir, 'untouched') });
    expect(await code(fresh.load(archive, { platform: 'not a platform' }))).toBe('INVALID_ARGUMENT');
    expect(await code(fresh.import(rootfsTar, { platform: 'a/b/c/d' }))).toBe('INVALID_ARGUMENT');
    expect(existsSync(join(dir, 'untouched'))).toBe(false);
    await fresh.close();
    await (await berth.image('example.test/arm:1')).remove();
    await (await berth.image('example.test/plain:1')).remove();
  });

  it('copy takes a platform string', async () => {
    const layout = join(dir, 'layout');
    const host = process.arch === 'x64' ? 'amd64' : process.arch;
    const r = await berth.copy('busybox', `oci:${layout}:bb`, { platform: `linux/${host}` });
    expect(r.root.digest).toBe((await berth.image('busybox')).digest);
    expect(JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')).manifests).toHaveLength(1);
    expect(await code(berth.copy('busybox', `oci:${join(dir, 'layout2')}:bb`, { platform: 'x//y' }))).toBe('INVALID_ARGUMENT');
    expect(existsSync(join(dir, 'layout2'))).toBe(false);
  });

  it('versions(): berth, node, runc of this Berth (null when absent), buildctl', async () => {
    const v = await berth.versions();
    expect(v.berth).toBe(pkg.version);
    expect(v.node).toBe(process.version);
    expect(v.runc).toMatch(/^\d+\.\d+\.\d+/);
    expect(v.buildctl === null || (typeof v.buildctl === 'string' && v.buildctl.length > 0)).toBe(true);
    await using noRunc = await openBerth({ root: join(dir, 'no-runc'), runc: join(dir, 'no-such-runc') });
    expect((await noRunc.versions()).runc).toBeNull();
    expect(existsSync(join(dir, 'no-runc', 'content'))).toBe(false); // no store was opened
  });
});

describe.skipIf(!isRoot)('Berth: run/create/exec hooks on runc', () => {
  it('containers() shows the image as docker ps does: familiar name, or a short ID', async () => {
    const byName = await berth.create('busybox', ['true']);
    const id = (await (await berth.image('busybox')).inspect()).configDesc.digest;
    const byId = await berth.create(id, ['true']);
    const rows = await berth.containers();
    expect(rows.find((c) => c.record.id === byName.id)?.image).toBe('busybox:latest');
    expect(rows.find((c) => c.record.id === byId.id)?.image).toBe(id.slice(7, 19));
    await byName.remove();
    await byId.remove();
  });

  it('onWarning hears the runc warning once per root, as `info` reports it', async () => {
    await using b = await openBerth({ root: join(dir, 'warn') });
    await b.load(archive);
    const info = await b.info();
    const first: string[] = [];
    expect((await b.run('busybox', ['true'], { rm: true, onWarning: (w) => first.push(w) })).exitCode).toBe(0);
    expect(first).toEqual(info.runc.warning ? [info.runc.warning] : []);
    const second: string[] = [];
    await b.run('busybox', ['true'], { rm: true, onWarning: (w) => second.push(w) });
    expect(second).toEqual([]);
  });

  it('forwardSignals hands out runc\'s forwarder at spawn: run and exec pass a SIGTERM on to the process', async () => {
    let forward: ((s: NodeJS.Signals) => void) | undefined;
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        out += chunk.toString();
        if (out === 'ready\n') forward?.('SIGTERM'); // once
        cb();
      },
    });
    const r = await berth.run('busybox', ['sh', '-c', 'trap "echo got; exit 3" TERM; echo ready; while :; do sleep 1; done'], {
      rm: true,
      stdout: sink,
      forwardSignals: (f) => (forward = f),
    });
    expect(forward).toBeTypeOf('function');
    expect(r.exitCode).toBe(3);
    expect(out).toBe('ready\ngot\n');

    const c = await berth.create('busybox', ['sleep', '30']);
    await c.start();
    let fwd: ((s: NodeJS.Signals) => void) | undefined;
    const x = await c.exec(['sleep', '30'], { forwardSignals: (f) => ((fwd = f), setTimeout(() => f('SIGTERM'), 100)) });
    expect(fwd).toBeTypeOf('function');
    expect(x.exitCode).toBe(128 + 15);
    const envFile = join(dir, 'exec-env.list');
    await writeFile(envFile, 'B=from-file\nC=file\n');
    expect((await c.exec(['sh', '-c', 'echo $B $C'], { envFiles: [envFile], env: { C: 'record' } })).stdout).toBe('from-file record\n');
    await c.remove({ force: true });
  });

  it('env files are read by the facade; a bad network or env file is INVALID_ARGUMENT and creates nothing', async () => {
    const envFile = join(dir, 'env.list');
    await writeFile(envFile, '# comment\nFROM_FILE=yes\n');
    const r = await berth.run('busybox', ['sh', '-c', 'echo $FROM_FILE $A'], { rm: true, envFiles: [envFile], env: ['A=1'], network: 'none' });
    expect(r.stdout).toBe('yes 1\n');
    const before = (await berth.containers()).length;
    expect(await code(berth.run('busybox', ['true'], { rm: true, network: 'bridge0' as 'none' }))).toBe('INVALID_ARGUMENT');
    const e = await berth.create('busybox', ['true'], { envFiles: [join(dir, 'no-such.env')] }).catch((x: unknown) => x);
    expect(isBerthError(e, 'INVALID_ARGUMENT') && /--env-file/.test((e as Error).message)).toBe(true);
    expect((await berth.containers()).length).toBe(before);
  });

  it('a run whose signal is already aborted rejects with ABORTED and leaves no rm container behind', async () => {
    const before = (await berth.containers()).map((c) => c.record.id);
    const ac = new AbortController();
    ac.abort();
    expect(await code(berth.run('busybox', ['true'], { rm: true, signal: ac.signal }))).toBe('ABORTED');
    expect((await berth.containers()).map((c) => c.record.id)).toEqual(before);
  });
});
