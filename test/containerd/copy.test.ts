/**
 * `berth copy` into and out of a real, private containerd (started here from Debian's package,
 * never the host's), checked with `ctr` against the same socket.
 */
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { parseLocation } from '../../src/transports/index.js';
import { busyboxImage } from '../fixtures/busybox-image.js';
import { startContainerd, type Containerd } from '../kit/containerd.js';
import { BERTH_BIN, randomImage, runBerth, testdir } from '../kit/index.js';

const run = promisify(execFile);

let c: Containerd;
let dir: string;
let root: string;
let store: ContentStore;
/** A runnable image in the store, made once for every test here. */
let img: Awaited<ReturnType<typeof busyboxImage>>;

/** `ctr` in namespace `ns` against the private containerd. */
async function ctr(ns: string, args: string[], timeout = 60_000): Promise<string> {
  return (await run('ctr', ['-a', c.sock, '-n', ns, ...args], { timeout, maxBuffer: 16 << 20 })).stdout;
}

function berth(args: string[], timeoutMs = 120_000) {
  return runBerth([...args, '--containerd-address', c.sock], { root, timeoutMs });
}

interface Summary {
  name: string | null;
  digest: string;
  sent: { blobs: number; bytes: number };
  existing: { blobs: number; bytes: number };
  resumedBytes: number;
  verified: boolean;
}

async function copyJson(src: string, dst: string): Promise<Summary> {
  const r = await berth(['copy', '--format', 'json', '--progress', 'none', src, dst]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Summary;
}

beforeAll(async () => {
  dir = await mkdtemp('/tmp/berth-ctrd-');
  c = await startContainerd(dir);
  root = join(await testdir(), 'root');
  store = await ContentStore.open(root);
  img = await busyboxImage(store, 'berth.test/busybox:latest', { config: { Cmd: ['echo', 'hello from berth copy'] } });
}, 60_000);

afterAll(async () => {
  for (const ns of ['k8s.io', 'default', 'berth-test']) {
    // Containers of a failed `ctr run --rm` would keep containerd's mounts.
    const list = await ctr(ns, ['containers', 'ls', '-q']).catch(() => '');
    for (const id of list.split('\n').filter(Boolean)) await ctr(ns, ['tasks', 'kill', '-s', 'KILL', id]).catch(() => {});
    for (const id of list.split('\n').filter(Boolean)) await ctr(ns, ['containers', 'rm', id]).catch(() => {});
  }
  await c?.stop();
  await run('umount', ['-R', '-l', dir]).catch(() => {});
  await rm(dir, { recursive: true, force: true }).catch(() => {});
}, 60_000);

describe('transport names', () => {
  it('parses skopeo-style names and refuses unknown ones', () => {
    expect(parseLocation('docker://127.0.0.1:5000/a/b:1')).toEqual({ transport: 'docker', ref: '127.0.0.1:5000/a/b:1' });
    expect(parseLocation('oci:/tmp/x:v1')).toEqual({ transport: 'oci', path: '/tmp/x', ref: 'v1' });
    expect(parseLocation('oci-archive:/tmp/x.tar')).toEqual({ transport: 'oci-archive', path: '/tmp/x.tar' });
    expect(parseLocation('docker-archive:/tmp/x.tar:a/b:c')).toEqual({ transport: 'docker-archive', path: '/tmp/x.tar', ref: 'a/b:c' });
    expect(parseLocation('containerd:k8s.io/app:1')).toEqual({ transport: 'containerd', namespace: 'k8s.io', ref: 'app:1' });
    expect(parseLocation('containerd:app')).toEqual({ transport: 'containerd', namespace: 'default', ref: 'app' });
    expect(parseLocation('berth:alpine')).toEqual({ transport: 'berth', ref: 'alpine' });
    expect(parseLocation('localhost:5000/x:y')).toEqual({ transport: 'berth', ref: 'localhost:5000/x:y' });
    expect(() => parseLocation('docker-daemon:alpine:latest')).toThrow(/not supported/);
    expect(() => parseLocation('bogus:/x/y')).toThrow(/unknown transport "bogus"/);
  });
});

describe('berth copy into containerd', () => {
  it('copies a store image that ctr lists, checks complete and runs; a second copy sends nothing; copied back out it keeps its digest', async () => {
    const first = await copyJson('berth.test/busybox:latest', 'containerd:k8s.io/berth.test/busybox:latest');
    expect(first.digest).toBe(img.root.digest);
    expect(first.sent.blobs).toBe(3); // manifest, config, layer
    expect(first.existing.blobs).toBe(0);
    expect(first.sent.bytes).toBe(img.root.size + img.manifest.config.size + img.layerDesc.size);
    expect(first.verified).toBe(true);

    expect(await ctr('k8s.io', ['images', 'ls', '-q'])).toContain('berth.test/busybox:latest');
    const check = await ctr('k8s.io', ['images', 'check']);
    expect(check).toMatch(/berth\.test\/busybox:latest\s.*complete \(2\/2\)/);
    const out = await ctr('k8s.io', ['run', '--rm', 'berth.test/busybox:latest', `berth-copy-${process.pid}`], 120_000);
    expect(out).toContain('hello from berth copy');

    const again = await copyJson('berth.test/busybox:latest', 'containerd:k8s.io/berth.test/busybox:latest');
    expect(again.sent).toEqual({ blobs: 0, bytes: 0 });
    expect(again.existing.blobs).toBe(3);

    // Out of containerd into an archive: same root digest; the archive loads into ctr again.
    const d = await testdir();
    const back = await copyJson('containerd:k8s.io/berth.test/busybox:latest', `oci-archive:${join(d, 'out.tar')}`);
    expect(back.digest).toBe(img.root.digest);
    const store2 = join(d, 'root2');
    const loaded = await runBerth(['load', '-i', join(d, 'out.tar')], { root: store2 });
    expect(loaded.code).toBe(0);
    const insp = await runBerth(['images', '--format', 'json'], { root: store2 });
    expect(insp.stdout).toContain(img.root.digest.slice(7, 19));
  }, 240_000);

  it('a rebuilt image that changed one small layer sends that layer, its config and manifest only', async () => {
    const base = await randomImage(store, { name: 'berth.test/rebuilt:1', layers: 4, layerSize: 400_000 });
    await copyJson('berth.test/rebuilt:1', 'containerd:berth-test/berth.test/rebuilt:1');
    // Rebuild: the same first three layers, a new small last layer.
    const { tarOf } = await import('../kit/index.js');
    const { canonicalJson } = await import('../../src/oci/digest.js');
    const { tagImage } = await import('../../src/store/images.js');
    const tar = tarOf({ 'changed.txt': 'rebuilt: one small layer changed\n' });
    const layer = await store.putBytes(tar);
    const layers = [...base.manifest.layers.slice(0, 3), { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }];
    const cfgBytes = canonicalJson({ ...base.config, rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids.slice(0, 3), layer.digest] } });
    const cfg = await store.putBytes(cfgBytes);
    const mBytes = canonicalJson({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg.digest, size: cfg.size }, layers });
    const m = await store.putBytes(mBytes);
    await tagImage(store, 'berth.test/rebuilt:2', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.size });
    const r = await copyJson('berth.test/rebuilt:2', 'containerd:berth-test/berth.test/rebuilt:2');
    expect(r.sent).toEqual({ blobs: 3, bytes: layer.size + cfg.size + m.size });
    expect(r.existing.blobs).toBe(3);
    expect(await ctr('berth-test', ['images', 'check'])).toMatch(/berth\.test\/rebuilt:2\s.*complete \(5\/5\)/);
  }, 120_000);

  it('--unpack unpacks for overlayfs through the snapshot and diff services; gc keeps the snapshots', async () => {
    const r = await copyJson('berth.test/busybox:latest', 'containerd:berth-test/berth.test/unpacked:1') as Summary & { unpacked?: unknown };
    expect(r.unpacked).toBeUndefined();
    const res = await berth(['copy', '--format', 'json', '--progress', 'none', '--unpack', 'berth.test/busybox:latest', 'containerd:berth-test/berth.test/unpacked:1']);
    expect(res.code).toBe(0);
    const u = JSON.parse(res.stdout) as Summary & { unpacked: { snapshotter: string; chainId: string; applied: number } };
    expect(u.sent.blobs).toBe(0);
    expect(u.unpacked.snapshotter).toBe('overlayfs');
    expect(u.unpacked.applied).toBe(1);
    expect(await ctr('berth-test', ['images', 'check'])).toMatch(/berth\.test\/unpacked:1\s.*complete \(2\/2\).*\strue\s*$/m);
    await ctr('berth-test', ['leases', 'create', '--id', 'berth-gc-trigger-2']);
    await ctr('berth-test', ['leases', 'rm', '--sync', 'berth-gc-trigger-2']);
    expect(await ctr('berth-test', ['snapshots', '--snapshotter', 'overlayfs', 'ls'])).toContain(u.unpacked.chainId);
    // Unpacking again applies nothing.
    const again = JSON.parse((await berth(['copy', '--format', 'json', '--progress', 'none', '--unpack', 'berth.test/busybox:latest', 'containerd:berth-test/berth.test/unpacked:1'])).stdout) as typeof u;
    expect(again.unpacked.applied).toBe(0);
    const out = await ctr('berth-test', ['run', '--rm', 'berth.test/unpacked:1', `berth-unpacked-${process.pid}`], 120_000);
    expect(out).toContain('hello from berth copy');
  }, 180_000);

  it('archive -> containerd streams from the file (not through the store) and labels the graph for gc', async () => {
    const d = await testdir();
    const a = await ContentStore.open(join(d, 'a'));
    const img = await randomImage(a, { name: 'berth.test/arch:v1', layers: 3, layerSize: 200_000 });
    const { saveImagesToFile } = await import('../../src/import/save.js');
    await saveImagesToFile(a, [img.name], join(d, 'img.tar'));
    const before = await readdir(join(root, 'content', 'blobs', 'sha256')).catch(() => []);
    const r = await copyJson(`docker-archive:${join(d, 'img.tar')}`, 'containerd:berth-test/berth.test/arch:v1');
    expect(r.digest).toBe(img.root.digest);
    expect(r.sent.blobs).toBe(5);
    expect(await readdir(join(root, 'content', 'blobs', 'sha256')).catch(() => [])).toEqual(before);
    expect(await ctr('berth-test', ['images', 'check'])).toMatch(/berth\.test\/arch:v1\s.*complete \(4\/4\)/);
    // The manifest carries ctr import's gc labels: its children survive a gc.
    const labels = await ctr('berth-test', ['content', 'ls']);
    expect(labels).toContain(`containerd.io/gc.ref.content.l.2=${img.layers[2]!.desc.digest}`);
    // Run containerd's gc now (removing a lease with --sync collects synchronously).
    await ctr('berth-test', ['leases', 'create', '--id', 'berth-gc-trigger']);
    await ctr('berth-test', ['leases', 'rm', '--sync', 'berth-gc-trigger']);
    expect(await ctr('berth-test', ['images', 'check'])).toMatch(/complete \(4\/4\)/);
  }, 120_000);

  it('a copy killed mid-blob resumes from containerd\'s offset and sends only what was missing', async () => {
    const d = await testdir();
    const img = await randomImage(store, { name: 'berth.test/big:v1', layers: 2, layerSize: 96 << 20, gzip: false });
    const big = img.layers.reduce((a, b) => (a.desc.size > b.desc.size ? a : b)).desc;
    // Kill berth (SIGKILL) once containerd holds part of the first big blob.
    const p = spawn(process.execPath, [BERTH_BIN, '--root', root, '--progress', 'json', 'copy', '--max-concurrent', '1', 'berth.test/big:v1', 'containerd:k8s.io/berth.test/big:v1', '--containerd-address', c.sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const exited = new Promise((r) => p.once('exit', r));
    const killed = new Promise<void>((resolve) => {
      const t = setTimeout(() => (p.kill('SIGKILL'), resolve()), 60_000);
      p.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        if (/"type":"blob-progress".*"done":(\d+)/.test(err) && [...err.matchAll(/"done":(\d+)/g)].some((m) => Number(m[1]) >= 16 << 20)) {
          clearTimeout(t);
          p.kill('SIGKILL');
          resolve();
        }
      });
      p.once('exit', () => (clearTimeout(t), resolve()));
    });
    await killed;
    await exited;
    expect(p.signalCode).toBe('SIGKILL');
    // containerd holds a partial ingest.
    const ingests = await ctr('k8s.io', ['content', 'active']);
    expect(ingests).toContain('berth-sha256:');

    const r = await copyJson('berth.test/big:v1', 'containerd:k8s.io/berth.test/big:v1');
    const total = img.root.size + img.manifest.config.size + img.layers.reduce((n, l) => n + l.desc.size, 0);
    // What containerd had written before the kill is kept (gRPC buffers the rest in flight).
    expect(r.resumedBytes).toBeGreaterThanOrEqual(1 << 20);
    expect(r.sent.bytes + r.resumedBytes + r.existing.bytes).toBe(total);
    expect(r.sent.bytes).toBe(total - r.resumedBytes - r.existing.bytes);
    expect(await ctr('k8s.io', ['images', 'check'])).toMatch(/berth\.test\/big:v1\s.*complete \(3\/3\)/);
    expect(await ctr('k8s.io', ['content', 'active'])).not.toContain(big.digest.slice(7, 20));
    const again = await copyJson('berth.test/big:v1', 'containerd:k8s.io/berth.test/big:v1');
    expect(again.sent.blobs).toBe(0);
    await rm(d, { recursive: true, force: true });
  }, 300_000);
});

describe('Ctrl-C mid-copy', () => {
  it('exits 130 and the next copy resumes from what containerd kept', async () => {
    const big = await randomImage(store, { name: 'berth.test/intr:v1', layers: 1, layerSize: 96 << 20, gzip: false });
    const p = spawn(process.execPath, [BERTH_BIN, '--root', root, '--progress', 'json', 'copy', 'berth.test/intr:v1', 'containerd:k8s.io/berth.test/intr:v1', '--containerd-address', c.sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let sent = false;
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    p.stderr.on('data', (b: Buffer) => {
      err += b.toString();
      if (!sent && [...err.matchAll(/"done":(\d+)/g)].some((m) => Number(m[1]) >= 16 << 20)) {
        sent = true;
        p.kill('SIGINT');
      }
    });
    const guard = setTimeout(() => p.kill('SIGKILL'), 120_000);
    const code = await exited;
    clearTimeout(guard);
    expect(sent).toBe(true);
    expect(code).toBe(130);
    const r = await copyJson('berth.test/intr:v1', 'containerd:k8s.io/berth.test/intr:v1');
    expect(r.resumedBytes).toBeGreaterThan(0);
    expect(r.sent.bytes + r.resumedBytes + r.existing.bytes).toBe(big.root.size + big.manifest.config.size + big.layers[0]!.desc.size);
    expect(await ctr('k8s.io', ['images', 'check'])).toMatch(/berth\.test\/intr:v1\s.*complete \(2\/2\)/);
  }, 240_000);
});

describe('containerd dying mid-copy', () => {
  it('berth exits non-zero with one line; after a restart the next copy finishes and the image is complete', async () => {
    const dir2 = await mkdtemp('/tmp/berth-ctrd2-');
    let c2 = await startContainerd(dir2);
    try {
      const img = await randomImage(store, { name: 'berth.test/dying:v1', layers: 1, layerSize: 128 << 20, gzip: false });
      const p = spawn(process.execPath, [BERTH_BIN, '--root', root, '--progress', 'json', 'copy', 'berth.test/dying:v1', 'containerd:k8s.io/berth.test/dying:v1', '--containerd-address', c2.sock], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      let stopping: Promise<void> | undefined;
      const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      p.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        if (!stopping && [...err.matchAll(/"done":(\d+)/g)].some((m) => Number(m[1]) >= 16 << 20)) stopping = c2.stop();
      });
      const guard = setTimeout(() => p.kill('SIGKILL'), 120_000);
      const code = await exited;
      clearTimeout(guard);
      await stopping;
      expect(stopping).toBeDefined();
      expect(code).toBe(8);
      const lines = err.split('\n').filter((l) => l && !l.startsWith('{'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^berth: .*containerd/);

      c2 = await startContainerd(dir2);
      const r = await (async () => {
        const res = await runBerth(['copy', '--format', 'json', '--progress', 'none', 'berth.test/dying:v1', 'containerd:k8s.io/berth.test/dying:v1', '--containerd-address', c2.sock], { root, timeoutMs: 120_000 });
        expect(res.code).toBe(0);
        return JSON.parse(res.stdout) as Summary;
      })();
      expect(r.digest).toBe(img.root.digest);
      expect(r.verified).toBe(true);
      expect(r.sent.bytes + r.resumedBytes + r.existing.bytes).toBe(img.root.size + img.manifest.config.size + img.layers[0]!.desc.size);
      expect((await run('ctr', ['-a', c2.sock, '-n', 'k8s.io', 'images', 'check'], { timeout: 60_000 })).stdout).toMatch(/berth\.test\/dying:v1\s.*complete \(2\/2\)/);
    } finally {
      await c2.stop();
      await rm(dir2, { recursive: true, force: true }).catch(() => {});
    }
  }, 300_000);
});

describe('bad input: one line, documented exit code', () => {
  it('no socket, not containerd, invalid namespace, missing source, unknown transport', async () => {
    const d = await testdir();
    const r1 = await runBerth(['copy', 'berth.test/busybox:latest', 'containerd:k8s.io/x:1', '--containerd-address', join(d, 'nope.sock')], { root });
    expect(r1.code).toBe(3);
    expect(r1.stderr.trim().split('\n')).toHaveLength(1);
    expect(r1.stderr).toContain('no containerd socket at');
    // CONTAINERD_ADDRESS (unix:// accepted) when there is no flag.
    const r1b = await runBerth(['copy', 'berth.test/busybox:latest', 'containerd:k8s.io/x:1'], { root, env: { CONTAINERD_ADDRESS: `unix://${join(d, 'env.sock')}` } });
    expect(r1b.code).toBe(3);
    expect(r1b.stderr).toContain(`no containerd socket at ${join(d, 'env.sock')}`);

    const srv = createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const fake = join(d, 'fake.sock');
    await new Promise<void>((r) => srv.listen(fake, r));
    try {
      const r2 = await runBerth(['copy', 'berth.test/busybox:latest', 'containerd:k8s.io/x:1', '--containerd-address', fake], { root, timeoutMs: 30_000 });
      expect(r2.code).toBe(8);
      expect(r2.stderr.trim().split('\n')).toHaveLength(1);
      expect(r2.stderr).toContain('is not a containerd socket');
    } finally {
      srv.close();
    }

    const r3 = await berth(['copy', 'berth.test/busybox:latest', 'containerd:bad_ns!/x:1']);
    expect(r3.code).toBe(2);
    expect(r3.stderr.trim().split('\n')).toHaveLength(1);
    expect(r3.stderr).toContain('containerd rejects the namespace');

    const r4 = await berth(['copy', 'containerd:k8s.io/berth.test/nothing:here', `oci-archive:${join(d, 'x.tar')}`]);
    expect(r4.code).toBe(3);
    expect(r4.stderr).toContain('not found');
    await expect(stat(join(d, 'x.tar'))).rejects.toThrow();
    expect((await readdir(d)).filter((n) => n.includes('.tmp-'))).toEqual([]);

    const r5 = await berth(['copy', 'bogus:/x', 'containerd:k8s.io/x:1']);
    expect(r5.code).toBe(2);
    expect(r5.stderr).toContain('unknown transport');
  }, 120_000);

  it('a user without access to the socket gets one line and exit 7', async () => {
    const d = await mkdtemp('/tmp/berth-perm-');
    try {
      await run('chmod', ['755', d]);
      await copyJson('berth.test/busybox:latest', `oci-archive:${join(d, 'img.tar')}`);
      // nobody can read the archive but not reach containerd's socket (its directory is 0700).
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const p = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BERTH_BIN, '--root', join(d, 'root'), 'copy', `oci-archive:${join(d, 'img.tar')}`, 'containerd:k8s.io/x:1', '--containerd-address', c.sock], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, HOME: d } });
        let stderr = '';
        p.stderr.on('data', (b: Buffer) => void (stderr += b.toString()));
        const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
        p.once('exit', (code) => (clearTimeout(t), resolve({ code, stderr })));
      });
      expect(r.code).toBe(7);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain('permission denied on the containerd socket');
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  }, 60_000);

  it('an existing target archive is replaced atomically', async () => {
    const d = await testdir();
    const f = join(d, 'exists.tar');
    await writeFile(f, 'old content');
    // A failing copy leaves the old file untouched and nothing beside it.
    const bad = await berth(['copy', 'berth.test/does-not-exist:1', `oci-archive:${f}`]);
    expect(bad.code).toBe(3);
    expect(await readFile(f, 'utf8')).toBe('old content');
    const ok = await copyJson('berth.test/busybox:latest', `docker-archive:${f}`);
    expect(ok.sent.blobs).toBe(3);
    expect((await readdir(d)).sort()).toEqual(['exists.tar']);
    const r = await copyJson(`docker-archive:${f}`, 'containerd:berth-test/berth.test/from-archive:1');
    expect(r.digest).toBe(ok.digest);
  }, 120_000);
});
