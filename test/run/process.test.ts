/**
 * runProcess / execProcess on real runc, on a plain directory rootfs (no store, no container
 * record): what the builder's RUN steps stand on. Root only.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { bundleRootfs, prepareRootfs, writeBundle } from '../../src/run/bundle.js';
import { execProcess, runProcess } from '../../src/run/process.js';
import { Runc } from '../../src/run/runc.js';
import { buildSpec, resolveUser, type SpecMount } from '../../src/run/spec.js';
import { busyboxRootfs } from '../fixtures/busybox-image.js';
import { testdir } from '../kit/index.js';

const isRoot = process.getuid?.() === 0;

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (b: Buffer) => void (text += b.toString()));
  return { stream, text: () => text };
}

/** A bundle on a fresh busybox directory; the rootfs path is absolute (outside the bundle). */
async function bundle(args: string[], o: { network?: 'none' | 'host' | 'private'; mounts?: SpecMount[]; user?: string } = {}) {
  const dir = await testdir('berth-proc-');
  const rootfs = join(dir, 'tree');
  await mkdir(rootfs);
  busyboxRootfs(rootfs);
  const spec = buildSpec({
    args,
    env: ['PATH=/bin'],
    cwd: '/',
    user: resolveUser(o.user, 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n', 'root:x:0:\napp:x:1000:\n'),
    rootfs,
    network: o.network ?? 'none',
    ...(o.mounts ? { mounts: o.mounts } : {}),
    nofile: 1024,
  });
  const b = join(dir, 'bundle');
  await writeBundle(b, spec);
  await prepareRootfs(bundleRootfs(b, spec), spec);
  const runc = new Runc({ root: join(dir, 'runc') });
  await mkdir(runc.root, { recursive: true });
  return { dir, bundle: b, rootfs, runc, id: `t-${Math.random().toString(16).slice(2, 10)}` };
}

describe.skipIf(!isRoot)('runProcess on a plain rootfs', () => {
  it('captures stdout and stderr, returns the status, leaves no runc state or files', async () => {
    const b = await bundle(['sh', '-c', 'echo out; echo err >&2; exit 7']);
    const out = sink();
    const err = sink();
    const r = await runProcess(b.runc, { id: b.id, bundle: b.bundle, io: { stdout: out.stream, stderr: err.stream } });
    expect(r).toEqual({ exitCode: 7 });
    expect(out.text()).toBe('out\n');
    expect(err.text()).toBe('err\n');
    expect(existsSync(join(b.runc.root, b.id))).toBe(false);
    expect((await readdir(b.bundle)).sort()).toEqual(['config.json']);
  });

  it('a missing command is 127 and a non-executable one 126, with the reason and nothing on stderr', async () => {
    const b = await bundle(['/nope']);
    const err = sink();
    const r = await runProcess(b.runc, { id: b.id, bundle: b.bundle, io: { stderr: err.stream } });
    expect(r.exitCode).toBe(127);
    expect(r.error?.message).toMatch(/"\/nope" not found/);
    expect(err.text()).toBe('');
    const c = await bundle(['/etc/passwd']);
    const r2 = await runProcess(c.runc, { id: c.id, bundle: c.bundle, io: {} });
    expect(r2.exitCode).toBe(126);
    expect(existsSync(join(c.runc.root, c.id))).toBe(false);
  });

  it('pipes stdin from any Readable and applies the user', async () => {
    const b = await bundle(['sh', '-c', 'id -u; cat'], { user: 'app' });
    const out = sink();
    const r = await runProcess(b.runc, { id: b.id, bundle: b.bundle, io: { stdin: Readable.from([Buffer.from('hello\n')]), stdout: out.stream } });
    expect(r.exitCode).toBe(0);
    expect(out.text()).toBe('1000\nhello\n');
  });

  it('extra bind and tmpfs mounts; network none has only loopback', async () => {
    const host = await testdir('berth-proc-src-');
    await writeFile(join(host, 'f'), 'from the host\n');
    const b = await bundle(['sh', '-c', 'cat /src/f; touch /cache/x && echo tmpfs-ok; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "'], {
      mounts: [
        { destination: '/src', type: 'bind', source: host, options: ['rbind', 'ro'] },
        { destination: '/cache', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev'] },
      ],
    });
    const out = sink();
    const r = await runProcess(b.runc, { id: b.id, bundle: b.bundle, io: { stdout: out.stream } });
    expect(r.exitCode).toBe(0);
    expect(out.text()).toBe('from the host\ntmpfs-ok\nlo\n');
    expect(existsSync(join(b.rootfs, 'cache/x'))).toBe(false);
  });

  it('abort: SIGTERM, then SIGKILL after the grace period; status resolves, runc state removed', async () => {
    // PID 1 without a handler ignores SIGTERM: the kill after the grace period ends it.
    const b = await bundle(['sleep', '600']);
    const ac = new AbortController();
    let pid = 0;
    const p = runProcess(b.runc, { id: b.id, bundle: b.bundle, io: {}, signal: ac.signal, graceMs: 300, onStarted: (n) => void (pid = n) });
    const t0 = Date.now();
    while (!pid && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 10));
    expect(pid).toBeGreaterThan(0);
    ac.abort();
    const r = await p;
    expect(r.exitCode).toBe(137);
    expect(existsSync(join(b.runc.root, b.id))).toBe(false);
    // A handler for SIGTERM: the process ends on the first signal.
    const c = await bundle(['sh', '-c', 'trap "exit 3" TERM; echo ready; while :; do sleep 0.05; done']);
    const ac2 = new AbortController();
    const out = new PassThrough();
    out.on('data', () => ac2.abort());
    const r2 = await runProcess(c.runc, { id: c.id, bundle: c.bundle, io: { stdout: out }, signal: ac2.signal, graceMs: 20_000 });
    expect(r2.exitCode).toBe(3);
  });

  it('execProcess runs a second process in the running one', async () => {
    const b = await bundle(['sh', '-c', 'echo started; read x; echo done']);
    const out = sink();
    const stdin = new PassThrough();
    const main = runProcess(b.runc, { id: b.id, bundle: b.bundle, io: { stdin, stdout: out.stream } });
    const t0 = Date.now();
    while (!out.text().includes('started') && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 10));
    const xo = sink();
    const spec = buildSpec({ args: ['sh', '-c', 'echo exec $$; exit 4'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [], home: '/' }, nofile: 1024 });
    const x = await execProcess(b.runc, { id: b.id, process: spec.process, io: { stdout: xo.stream } });
    expect(x.exitCode).toBe(4);
    expect(xo.text()).toMatch(/^exec \d+\n$/);
    const missing = await execProcess(b.runc, { id: b.id, process: { ...spec.process, args: ['/nope'] }, io: {} });
    expect(missing.exitCode).toBe(127);
    stdin.end('go\n');
    expect((await main).exitCode).toBe(0);
    expect(out.text()).toBe('started\ndone\n');
    expect((await readdir(b.runc.root)).filter((n) => n.startsWith('exec-'))).toEqual([]);
  });
});

