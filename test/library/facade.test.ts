/**
 * The `Berth` front door on real archives, a real docker-registry on 127.0.0.1 and real runc
 * (container tests need root), through the built package (dist/, as users import it: detached
 * containers start dist/run/monitor.js). The errors test loads two copies of the built
 * dist/errors.js from two module URLs, as two installed copies of berth would be.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Berth } from '../../src/index.js';
import { errorCode, startRegistry, type RunningRegistry } from '../kit/index.js';
import { busyboxArchive } from './busybox-archive.js';

const { openBerth, isBerthError, BerthError } = (await import(pathToFileURL(fileURLToPath(new URL('../../dist/index.js', import.meta.url))).href)) as typeof import('../../src/index.js');
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('test/library/facade: container tests skipped: runc needs root');

let dir = '';
let archive = '';
let berth: Berth;

async function mountsUnder(d: string): Promise<string[]> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.split(' ')[1]?.startsWith(d));
}

const code = errorCode;

beforeAll(async () => {
  dir = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'berth-facade-'));
  archive = join(dir, 'busybox.tar');
  await busyboxArchive(archive);
  berth = await openBerth({ root: join(dir, 'root') });
  await berth.load(archive); // every test can use busybox; the load test loads it again
});

afterAll(async () => {
  if (!dir) return;
  if (isRoot && berth) {
    for (const c of await berth.containers().catch(() => [])) await (await berth.container(c.record.id)).remove({ force: true }).catch(() => {});
  }
  await berth?.close();
  if ((await mountsUnder(dir)).length === 0) await rm(dir, { recursive: true, force: true });
});

describe('Berth: images', () => {
  it('openBerth resolves the root and creates nothing until a verb needs it', async () => {
    const b = await openBerth({ root: join(dir, 'lazy') });
    expect(b.root).toBe(join(dir, 'lazy'));
    await expect(readFile(join(dir, 'lazy', 'content', 'index.json'))).rejects.toThrow();
    await b.close();
  });

  it('load, images, image(ref) by name, ID and digest; tag and remove', async () => {
    const events: string[] = [];
    const r = await berth.load(archive, { onProgress: (e) => events.push(e.type) });
    expect(r.images.flatMap((i) => i.names)).toEqual(['docker.io/library/busybox:latest']);
    expect(events.length).toBeGreaterThan(0);
    const rows = await berth.images();
    expect(rows.map((x) => `${x.Repository}:${x.Tag}`)).toEqual(['busybox:latest']);

    const img = await berth.image('busybox');
    expect(img.name).toBe('docker.io/library/busybox:latest');
    expect(img.digest).toBe(r.images[0]!.root.digest);
    const cfg = await img.config();
    expect(cfg.config?.Cmd).toEqual(['sh']);
    const id = (await img.inspect()).configDesc.digest;
    expect(rows[0]!.ID).toBe(id);
    // by ID (config digest), by short ID, by root digest
    expect((await berth.image(id)).digest).toBe(img.digest);
    expect((await berth.image(id.slice(7, 19))).digest).toBe(img.digest);
    expect((await berth.image(img.digest)).digest).toBe(img.digest);

    expect(await img.tag('example.test/copy:v1')).toBe('example.test/copy:v1');
    expect((await berth.images()).map((x) => `${x.Repository}:${x.Tag}`).sort()).toEqual(['busybox:latest', 'example.test/copy:v1']);
    const copy = await berth.image('example.test/copy:v1');
    expect(await copy.remove()).toMatchObject({ untagged: ['example.test/copy:v1'], deleted: [] });
    expect(await code(berth.image('example.test/copy:v1'))).toBe('NOT_FOUND');
    expect(await code(img.tag('Not A Name'))).toBe('INVALID_ARGUMENT');
    expect(await code(berth.image('nosuch/image'))).toBe('NOT_FOUND');
  });

  it('a bad archive is one BerthError and leaves the images as they were', async () => {
    const bad = join(dir, 'bad.tar');
    await writeFile(bad, 'not a tar archive at all');
    const before = await berth.images();
    expect(await code(berth.load(bad))).toBe('INVALID_ARGUMENT');
    expect(await berth.images()).toEqual(before);
  });

  it('save to a stream and to a file; the archive loads into another root', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (b: Buffer) => chunks.push(b));
    const r = await berth.save('busybox', sink);
    expect(r.images).toHaveLength(1);
    expect(Buffer.concat(chunks).length).toBeGreaterThan(10_000);
    const file = join(dir, 'saved.tar');
    await berth.save(['busybox'], file, { format: 'oci' });
    await using other = await openBerth({ root: join(dir, 'other') });
    const loaded = await other.load({ stream: (await import('node:fs')).createReadStream(file) });
    expect(loaded.images[0]!.root.digest).toBe((await berth.image('busybox')).digest);
  });

  it('import makes a one-layer image from a rootfs tarball', async () => {
    const { execFileSync } = await import('node:child_process');
    const src = join(dir, 'rootfs');
    await (await import('node:fs/promises')).mkdir(join(src, 'etc'), { recursive: true });
    await writeFile(join(src, 'etc', 'hello'), 'hi\n');
    const tar = join(dir, 'rootfs.tar');
    execFileSync('tar', ['-C', src, '-cf', tar, '.']);
    const r = await berth.import(tar, { name: 'example.test/imported:1', changes: ['CMD ["/bin/true"]'] });
    const img = await berth.image('example.test/imported:1');
    expect(img.digest).toBe(r.root.digest);
    expect((await img.config()).config?.Cmd).toEqual(['/bin/true']);
    await img.remove();
  });

  it('push and pull through a real registry, with one transport per Berth', async () => {
    let reg: RunningRegistry | undefined;
    try {
      reg = await startRegistry();
      const name = `${reg.host}/facade/busybox:1`;
      await (await berth.image('busybox')).tag(name);
      // The fixture's layer is gzip already: pushed as stored.
      const pushed = await berth.push(name);
      expect(pushed.digest).toBe((await berth.image('busybox')).digest);
      await using other = await openBerth({ root: join(dir, 'pulled') });
      const pulled = await other.pull(name);
      expect(pulled.root.digest).toBe(pushed.digest);
      expect((await other.images()).map((x) => `${x.Repository}:${x.Tag}`)).toEqual([name]);
      await (await berth.image(name)).remove();
    } finally {
      await reg?.stop();
    }
  });

  it('a closed Berth rejects every verb; asyncDispose closes it', async () => {
    const b = await openBerth({ root: join(dir, 'closed') });
    await b[Symbol.asyncDispose]();
    expect(await code(b.images())).toBe('INVALID_ARGUMENT');
    await b.close(); // idempotent
  });
});

describe.skipIf(!isRoot)('Berth: containers on runc', () => {
  afterAll(async () => {
    expect(await mountsUnder(dir)).toEqual([]);
  });

  it('run collects stdout and stderr; a non-zero exit resolves; rm leaves nothing', async () => {
    const r = await berth.run('busybox', ['sh', '-c', 'echo out; echo err >&2; exit 7'], { rm: true });
    expect(r).toEqual({ exitCode: 7, stdout: 'out\n', stderr: 'err\n', containerId: expect.stringMatching(/^[a-f0-9]{64}$/) });
    expect((await berth.containers()).map((c) => c.record.id)).not.toContain(r.containerId);
  });

  it('run writes to a Writable, takes env as a record, and the image default command', async () => {
    const sink = new PassThrough();
    let text = '';
    sink.on('data', (b: Buffer) => void (text += b));
    const r = await berth.run('busybox', ['sh', '-c', 'echo "$GREETING"'], { rm: true, stdout: sink, stderr: 'ignore', env: { GREETING: 'hello there' } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBeUndefined();
    expect(r.stderr).toBeUndefined();
    expect(text).toBe('hello there\n');
    // No cmd: the image's Cmd (sh) reads no stdin and exits 0.
    expect((await berth.run('busybox', undefined, { rm: true })).exitCode).toBe(0);
  });

  it('tty with collected output is refused before any container is made', async () => {
    const before = (await berth.containers()).length;
    expect(await code(berth.run('busybox', ['true'], { tty: true, stdout: 'pipe' }))).toBe('INVALID_ARGUMENT');
    expect((await berth.containers()).length).toBe(before);
  });

  it('a missing command rejects with PROCESS and exitCode 127', async () => {
    const e = await berth.run('busybox', ['/no/such/cmd'], { rm: true }).catch((x: unknown) => x);
    expect(isBerthError(e)).toBe(true);
    expect((e as InstanceType<typeof BerthError>).exitCode).toBe(127);
  });

  it('pull policy: never does not pull, missing pulls what is absent, always pulls what is present', async () => {
    let reg: RunningRegistry | undefined;
    try {
      reg = await startRegistry();
      const name = `${reg.host}/facade/policy:1`;
      // absent locally and in the registry
      expect(await code(berth.run(name, ['true'], { rm: true, pull: 'never' }))).toBe('NOT_FOUND');
      expect(await code(berth.run(name, ['true'], { rm: true, pull: 'missing' }))).toBe('NOT_FOUND');
      // present locally only: missing runs it; always asks the registry, which has nothing
      await (await berth.image('busybox')).tag(name);
      expect((await berth.run(name, ['true'], { rm: true, pull: 'missing' })).exitCode).toBe(0);
      expect(await code(berth.run(name, ['true'], { rm: true, pull: 'always' }))).toBe('NOT_FOUND');
      // in the registry only: missing pulls it first
      await berth.push(name);
      await (await berth.image(name)).remove();
      const progress: string[] = [];
      const r = await berth.run(name, ['echo', 'pulled'], { rm: true, onProgress: (e) => progress.push(e.type) });
      expect(r.stdout).toBe('pulled\n');
      expect(progress).toContain('blob-done');
      expect((await berth.image(name)).digest).toBe((await berth.image('busybox')).digest);
      await (await berth.image(name)).remove();
      expect(await code(berth.run('busybox', ['true'], { pull: 'sometimes' as 'never' }))).toBe('INVALID_ARGUMENT');
    } finally {
      await reg?.stop();
    }
  });

  it('aborting run kills the container and rejects with ABORTED', async () => {
    const ac = new AbortController();
    let started = 0;
    const e = await berth
      .run('busybox', ['sleep', '30'], {
        rm: true,
        signal: ac.signal,
        onStart: ({ pid }) => {
          started = pid;
          ac.abort();
        },
      })
      .catch((x: unknown) => x);
    expect(started).toBeGreaterThan(0);
    expect(isBerthError(e, 'ABORTED')).toBe(true);
    expect((await berth.containers()).filter((c) => c.status === 'running')).toEqual([]);
  });

  it('create, start, exec, logs, stop, remove; containers() and container(ref)', async () => {
    const created = await berth.create('busybox', ['sh', '-c', 'echo started; echo oops >&2; exec sleep 30'], { name: 'facade-long' });
    expect(created.name).toBe('facade-long');
    expect((await created.info()).status).toBe('created');
    const c = await berth.container('facade-long');
    expect(c.id).toBe(created.id);
    expect((await berth.container(created.id.slice(0, 12))).id).toBe(created.id);
    const { pid } = await c.start();
    expect(pid).toBeGreaterThan(0);
    expect((await berth.containers()).find((x) => x.record.id === c.id)?.status).toBe('running');

    const x = await c.exec(['sh', '-c', 'echo in-container; cat /nope; exit 2']);
    expect(x.exitCode).toBe(2);
    expect(x.stdout).toBe('in-container\n');
    expect(x.stderr).toMatch(/nope/);
    expect((await c.exec(['sh', '-c', 'echo $A'], { env: ['A=1'] })).stdout).toBe('1\n');
    // onStart hands out a signal forwarder (a CLI forwards SIGINT with it); abort kills
    const term = await c.exec(['sleep', '30'], { onStart: ({ kill }) => setTimeout(() => kill('SIGTERM'), 100) });
    expect(term.exitCode).toBe(128 + 15);
    const ac = new AbortController();
    const ab = await c.exec(['sleep', '30'], { signal: ac.signal, onStart: () => setTimeout(() => ac.abort(), 100) }).catch((e: unknown) => e);
    expect(isBerthError(ab, 'ABORTED')).toBe(true);
    // both sleeps are gone: only the container's own `sleep 30` (its init) is left
    const ps = await c.exec(['ps', '-o', 'args']);
    expect(ps.stdout!.split('\n').filter((l) => l.trim() === 'sleep 30')).toHaveLength(1);

    // logs: the two lines, eventually (the monitor writes as the process does)
    let entries: { log: string; stream: string }[] = [];
    for (let i = 0; i < 200 && entries.length < 2; i++) {
      entries = [];
      for await (const e of c.logs()) entries.push(e);
      if (entries.length < 2) await new Promise((r) => setTimeout(r, 25));
    }
    expect(entries.map((e) => [e.stream, e.log]).sort()).toEqual([['stderr', 'oops\n'], ['stdout', 'started\n']]);
    const tail: string[] = [];
    for await (const e of c.logs({ tail: 1 })) tail.push(e.log);
    expect(tail).toHaveLength(1);
    // a followed read ends when the loop is left
    for await (const e of c.logs({ follow: true })) {
      expect(e.log).toBeTruthy();
      break;
    }

    expect(await code(c.remove())).toBe('INVALID_ARGUMENT'); // running
    const status = await c.stop({ timeout: 1 });
    expect(typeof status).toBe('number');
    expect(await c.wait()).toBe(status);
    expect((await c.info()).status).toBe('exited');
    expect(await code(c.kill())).toBe('INVALID_ARGUMENT'); // not running
    await c.remove();
    expect(await code(berth.container('facade-long'))).toBe('NOT_FOUND');
  });

  it('openBerth options: snapshotter picks the rootfs driver, runc the binary', async () => {
    const { execFileSync } = await import('node:child_process');
    const rootType = async (b: Berth) => {
      const r = await b.run('busybox', ['sh', '-c', "grep ' / ' /proc/self/mounts | head -n1 | cut -d' ' -f3"], { rm: true });
      expect(r.exitCode).toBe(0);
      return r.stdout!.trim();
    };
    const hostType = execFileSync('df', ['--output=fstype', dir], { encoding: 'utf8' }).trim().split('\n').pop()!;
    await using copy = await openBerth({ root: join(dir, 'copy-root'), snapshotter: 'copy' });
    await copy.load(archive);
    expect(await rootType(copy)).toBe(hostType); // a bind mount of a copied tree
    if (hostType !== 'overlay') expect(await rootType(berth)).toBe('overlay');
    await using noRunc = await openBerth({ root: join(dir, 'copy-root'), runc: join(dir, 'no-such-runc') });
    expect(await code(noRunc.run('busybox', ['true'], { rm: true }))).toBe('UNAVAILABLE');
  });

  it('prune removes stopped containers (when asked) and unused content', async () => {
    const kept = await berth.create('busybox', ['true'], { name: 'facade-prune' });
    const before = await berth.prune({ dryRun: true });
    expect(before.containers).toEqual([]);
    const r = await berth.prune({ containers: true });
    expect(r.containers).toContain(kept.id);
    expect(await code(berth.container('facade-prune'))).toBe('NOT_FOUND');
    // busybox stays: it is tagged
    expect((await berth.images()).map((x) => x.Repository)).toContain('busybox');
  });
});

describe('isBerthError across two installed copies', () => {
  it('brands errors with Symbol.for so another copy recognises them', async () => {
    const dist = fileURLToPath(new URL('../../dist/errors.js', import.meta.url));
    const copyDir = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'berth-errcopy-'));
    try {
      // the copy without its source map comment (the map would point at the first copy's source)
      await writeFile(join(copyDir, 'errors.js'), (await readFile(dist, 'utf8')).replace(/^\/\/# sourceMappingURL=.*$/m, ''));
      await writeFile(join(copyDir, 'package.json'), '{"type":"module"}');
      type Errors = typeof import('../../src/errors.js');
      const a = (await import(pathToFileURL(dist).href)) as Errors;
      const b = (await import(pathToFileURL(join(copyDir, 'errors.js')).href)) as Errors;
      expect(a.BerthError).not.toBe(b.BerthError); // really two copies
      const fromB = new b.BerthError('NOT_FOUND', 'x');
      const fromA = new a.BerthError('UNAVAILABLE', 'y');
      expect(a.isBerthError(fromB)).toBe(true);
      expect(a.isBerthError(fromB, 'NOT_FOUND')).toBe(true);
      expect(a.isBerthError(fromB, 'INTERNAL')).toBe(false);
      expect(b.isBerthError(fromA, 'UNAVAILABLE')).toBe(true);
      expect(fromB instanceof a.BerthError).toBe(true);
      expect(fromA instanceof a.BerthError).toBe(true);
      expect(fromA instanceof Error).toBe(true);
      // and the source build agrees with both
      expect(isBerthError(fromB) && fromB instanceof BerthError).toBe(true);
      // not a BerthError: a plain Error, an object with a code, null
      expect(a.isBerthError(Object.assign(new Error('z'), { code: 'NOT_FOUND' }))).toBe(false);
      expect(a.isBerthError({ code: 'NOT_FOUND', name: 'BerthError' })).toBe(false);
      expect(a.isBerthError(null)).toBe(false);
      expect(new Error('z') instanceof a.BerthError).toBe(false);
      // the brand is not an own enumerable field (errors print and serialise as before)
      expect(Object.getOwnPropertySymbols(fromA)).toEqual([]);
    } finally {
      await rm(copyDir, { recursive: true, force: true });
    }
  });
});
