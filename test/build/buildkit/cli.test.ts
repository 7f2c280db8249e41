/**
 * `berth build` through the BuildKit backend with the stand-in buildctl (test/kit/buildctl-standin.mjs),
 * which checks its arguments and replays real BuildKit recordings; the daemon is a unix socket that
 * accepts connections (what buildctl needs to get going), or the stand-in buildkitd.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadArchive } from '../../../src/import/load.js';
import { tagImage } from '../../../src/store/images.js';
import { ContentStore } from '../../../src/store/store.js';
import { BERTH_BIN, runBerth } from '../../kit/cli.js';
import { testdir } from '../../kit/testdir.js';

const STANDIN = fileURLToPath(new URL('../../kit/buildctl-standin.mjs', import.meta.url));
const DAEMON_STANDIN = fileURLToPath(new URL('../../kit/buildkitd-standin.mjs', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../fixtures/buildkit-samples/', import.meta.url));
const OCI_ROOT = 'sha256:953f21a2b5bc225082fddcddbffba8e6db774380a1fb732c5f964ffbed3ef034';
const OCI_CONFIG = 'sha256:fe95c2a752f4dd7577f3bddf2970bc4aa92dcaeff30dc0afc10d1871099a7ff9';

let sockDir: string;
let server: Server;
let addr: string;

beforeAll(async () => {
  const { mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  sockDir = await mkdtemp(join(tmpdir(), 'berth-bk-'));
  server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(join(sockDir, 'buildkitd.sock'), r));
  addr = `unix://${join(sockDir, 'buildkitd.sock')}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  const { rm } = await import('node:fs/promises');
  await rm(sockDir, { recursive: true, force: true });
});

interface Case {
  root: string;
  ctx: string;
  log: string;
  env: NodeJS.ProcessEnv;
}

async function setup(dockerfile = 'FROM base\nRUN echo hello > /greeting\n', env: NodeJS.ProcessEnv = {}): Promise<Case> {
  const dir = await testdir();
  const ctx = join(dir, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  await writeFile(join(ctx, 'app.txt'), 'app\n');
  const log = join(dir, 'argv.log');
  return { root: join(dir, 'root'), ctx, log, env: { BERTH_BUILDCTL: STANDIN, BUILDKIT_HOST: addr, STANDIN_LOG: log, ...env } };
}

async function argvOf(c: Case): Promise<string[]> {
  const lines = (await readFile(c.log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as string[]);
  return lines.find((l) => l.includes('build'))!;
}

/** Tags and blobs in the store: the "store exactly as before" check. */
async function storeState(root: string): Promise<{ names: string[]; blobs: number }> {
  if (!existsSync(join(root, 'content'))) return { names: [], blobs: 0 };
  const s = await ContentStore.open(root);
  return { names: (await s.listImages()).map((i) => i.name), blobs: (await s.listBlobs()).length };
}

const flagValues = (a: string[], flag: string) => a.flatMap((x, i) => (x === flag ? [a[i + 1]!] : []));

describe('berth build with the BuildKit backend (stand-in buildctl)', () => {
  it('streams the OCI output into the store, tags it by its root digest, prints the image ID', async () => {
    const c = await setup();
    const dir = join(c.root, '..');
    const r = await runBerth(['build', '--builder', 'buildkit', '--progress', 'plain', '-t', 'myapp:dev', '-t', 'reg.example/x:1', '--iidfile', join(dir, 'iid'), '--metadata-file', join(dir, 'meta.json'), c.ctx], { root: c.root, env: c.env });
    expect(r.stderr).toContain('#5 [1/3] RUN echo hello > /greeting');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${OCI_CONFIG}\n`);
    const a = await argvOf(c);
    expect(flagValues(a, '--output')).toEqual(['type=oci,dest=-']);
    expect(flagValues(a, '--progress')).toEqual(['rawjson']);
    expect(flagValues(a, '--local')).toEqual([`context=${c.ctx}`, `dockerfile=${c.ctx}`]);
    expect(flagValues(a, '--addr')).toEqual([addr]);
    const imgs = await runBerth(['images', '--digests', '--no-trunc', '--format', 'json'], { root: c.root });
    const rows = imgs.stdout.trim().split('\n').map((l) => JSON.parse(l) as { Repository: string; Tag: string; Digest: string; ID: string });
    expect(rows.map((x) => `${x.Repository}:${x.Tag}`).sort()).toEqual(['myapp:dev', 'reg.example/x:1']);
    expect(new Set(rows.map((x) => x.Digest))).toEqual(new Set([OCI_ROOT]));
    expect(await readFile(join(dir, 'iid'), 'utf8')).toBe(rows[0]!.ID);
    const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8'));
    expect(meta['containerimage.digest']).toBe(rows[0]!.Digest);
    // The store is whole: every blob re-hashed.
    const check = await runBerth(['system', 'check'], { root: c.root });
    expect(check.code).toBe(0);
  });

  it('FROM an image only in the store: an OCI-layout named context pinned to its digest', async () => {
    const c = await setup('ARG B=base\nFROM $B\nRUN true\n');
    const store = await ContentStore.open(c.root);
    const r0 = await loadArchive(store, { path: join(SAMPLES, 'v0.32.2-run-basic-oci.tar') });
    await tagImage(store, 'base', r0.images[0]!.root);
    const r = await runBerth(['build', '--builder', 'buildkit', '--progress', 'plain', '-t', 'next', c.ctx], { root: c.root, env: c.env });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`buildkit: base from berth's store (${OCI_ROOT})`);
    const a = await argvOf(c);
    expect(flagValues(a, '--oci-layout')).toEqual([`berth=${join(c.root, 'content')}`]);
    expect(flagValues(a, '--opt')).toContain(`context:base=oci-layout://berth@${OCI_ROOT}`);
    // --pull asks the registry instead.
    await writeFile(c.log, '');
    expect((await runBerth(['build', '--builder', 'buildkit', '--pull', '-q', c.ctx], { root: c.root, env: c.env })).code).toBe(0);
    expect(flagValues(await argvOf(c), '--oci-layout')).toEqual([]);
  });

  it('every docker flag reaches buildctl', async () => {
    const c = await setup();
    await writeFile(join(c.ctx, 'secret.txt'), 's3cret');
    const r = await runBerth(
      ['build', '--builder', 'buildkit', '-q', '-f', join(c.ctx, 'Dockerfile'), '--build-arg', 'A=1', '--build-arg', 'FROM_ENV', '--build-arg', 'UNSET_ONE', '--label', 'l=v', '--target', 't', '--platform', 'linux/amd64',
        '--no-cache', '--network', 'none', '--secret', `id=s,src=${join(c.ctx, 'secret.txt')}`, '--secret', 'id=tok,env=FROM_ENV', '--ssh', 'default', '--cache-from', 'reg/c:1', '--cache-to', 'type=inline', c.ctx],
      { root: c.root, env: { ...c.env, FROM_ENV: 'from-env' } },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const a = await argvOf(c);
    expect(flagValues(a, '--opt')).toEqual(['filename=Dockerfile', 'build-arg:A=1', 'build-arg:FROM_ENV=from-env', 'label:l=v', 'target=t', 'platform=linux/amd64', 'force-network-mode=none']);
    expect(a).toContain('--no-cache');
    expect(flagValues(a, '--secret')).toEqual([`id=s,src=${join(c.ctx, 'secret.txt')}`, 'id=tok,env=FROM_ENV']);
    expect(flagValues(a, '--ssh')).toEqual(['default']);
    expect(flagValues(a, '--import-cache')).toEqual(['type=registry,ref=reg/c:1']);
    expect(flagValues(a, '--export-cache')).toEqual(['type=inline']);
  });

  it('-f - (Dockerfile on stdin) and - (a tar context on stdin)', async () => {
    const c = await setup();
    const r = await runBerth(['build', '--builder', 'buildkit', '-q', '-f', '-', '-t', 'fromstdin', c.ctx], { root: c.root, env: c.env, input: 'FROM base\nRUN true\n' });
    expect(r.code).toBe(0);
    const a = await argvOf(c);
    expect(flagValues(a, '--local')[1]).not.toBe(`dockerfile=${c.ctx}`);
    const { execFileSync } = await import('node:child_process');
    const tar = execFileSync('tar', ['-C', c.ctx, '-cf', '-', '.']);
    const r2 = await runBerth(['build', '--builder', 'buildkit', '-q', '-t', 'tarctx', '-'], { root: c.root, env: c.env, input: tar });
    expect(r2.stderr).toBe('');
    expect(r2.code).toBe(0);
    expect((await storeState(c.root)).names.sort()).toEqual(['docker.io/library/fromstdin:latest', 'docker.io/library/tarctx:latest']);
    // The extracted context is removed afterwards.
    expect(await readdir(join(c.root, 'buildkit', 'tmp'))).toEqual([]);
  });

  it('-o type=docker,dest=- writes BuildKit\'s tar to stdout and nothing into the store', async () => {
    const c = await setup();
    const p = spawn(process.execPath, [BERTH_BIN, '--root', c.root, 'build', '--builder', 'buildkit', '-q', '-o', 'type=docker,dest=-', '-t', 'x:1', c.ctx], { env: { ...process.env, ...c.env } });
    const chunks: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => chunks.push(b));
    const code = await new Promise((r) => p.on('close', r));
    expect(code).toBe(0);
    expect(Buffer.concat(chunks).equals(await readFile(join(SAMPLES, 'v0.32.2-run-basic-docker.tar')))).toBe(true);
    expect(flagValues(await argvOf(c), '--output')).toEqual(['type=docker,name=x:1,dest=-']);
    expect((await storeState(c.root)).names).toEqual([]);
  });

  it('--push goes through BuildKit and prints the pushed image ID', async () => {
    const c = await setup();
    const r = await runBerth(['build', '--builder', 'buildkit', '-q', '--push', '-t', '127.0.0.1:5000/test/built24:1', c.ctx], { root: c.root, env: c.env });
    expect(r.code).toBe(0);
    expect(flagValues(await argvOf(c), '--output')).toEqual(['type=image,name=127.0.0.1:5000/test/built24:1,push=true']);
    // The pushed image's ID, from BuildKit's metadata (the v0.24.0 push recording).
    expect(r.stdout).toBe('sha256:38368d12e3fc16780a5c3c05345ce739119dad1b248255248ceeebef1175f0f2\n');
    expect((await storeState(c.root)).names).toEqual([]);
  });

  it('an old buildctl (v0.11) is read from --progress plain', async () => {
    const c = await setup(undefined, { STANDIN_VERSION: 'v0.11.6', STANDIN_SCENARIO: 'cached' });
    const r = await runBerth(['build', '--builder', 'buildkit', '--progress', 'json', '-t', 'old', c.ctx], { root: c.root, env: c.env });
    expect(r.code).toBe(0);
    expect(flagValues(await argvOf(c), '--progress')).toEqual(['plain']);
    const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string; step?: { name: string; cached: boolean } });
    expect(events[0]).toMatchObject({ type: 'message', text: 'builder: buildkit (asked for)' });
    expect(events.find((e) => e.type === 'step-done' && e.step!.name.startsWith('[2/2] RUN'))!.step!.cached).toBe(true);
  });
});

describe('bad input and failures: one line, the documented exit code, the store as before', () => {
  const oneLine = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('berth: '));

  it('a failing RUN: exit 9, the step and its output, nothing tagged, no blob', async () => {
    const c = await setup(undefined, { STANDIN_SCENARIO: 'run-fails' });
    const r = await runBerth(['build', '--builder', 'buildkit', '-q', '-t', 'x', c.ctx], { root: c.root, env: c.env });
    expect(r.code).toBe(9);
    expect(r.stderr).toBe('berth: build failed at Dockerfile:3 (RUN echo about to fail && exit 3): exit code 3\n  about to fail\n');
    expect(await storeState(c.root)).toEqual({ names: [], blobs: 0 });
  });

  it('a Dockerfile BuildKit rejects: exit 2 naming the line', async () => {
    const c = await setup(undefined, { STANDIN_SCENARIO: 'parse-error' });
    const r = await runBerth(['build', '--builder', 'buildkit', '-q', c.ctx], { root: c.root, env: c.env });
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toEqual(['berth: Dockerfile parse error at Dockerfile:3: unknown instruction: FROMM (did you mean FROM?): fix the Dockerfile']);
    expect(await storeState(c.root)).toEqual({ names: [], blobs: 0 });
  });

  it('a daemon that dies mid-build: non-zero with a clear line, nothing tagged', async () => {
    const c = await setup(undefined, { STANDIN_SCENARIO: 'die' });
    const r = await runBerth(['build', '--builder', 'buildkit', '-q', '-t', 'x', c.ctx], { root: c.root, env: c.env, timeoutMs: 20_000 });
    expect(r.code).toBe(8);
    expect(oneLine(r.stderr)[0]).toMatch(/^berth: the BuildKit daemon at unix:\/\/.* went away during the build \(Unavailable: error reading from server: EOF\); nothing was tagged/);
    expect(await storeState(c.root)).toEqual({ names: [], blobs: 0 });
  });

  it('a damaged OCI stream from buildctl is refused before anything is visible', async () => {
    const c = await setup(undefined, { STANDIN_SCENARIO: 'corrupt' });
    const r = await runBerth(['build', '--builder', 'buildkit', '-q', '-t', 'x', c.ctx], { root: c.root, env: c.env });
    expect(r.code).not.toBe(0);
    expect(oneLine(r.stderr)).toHaveLength(1);
    expect(await storeState(c.root)).toEqual({ names: [], blobs: 0 });
  });

  it('Ctrl-C stops buildctl: exit 130, nothing tagged', async () => {
    const c = await setup(undefined, { STANDIN_SCENARIO: 'hang', STANDIN_PIDFILE: '' });
    const pidFile = join(c.root, '..', 'standin.pid');
    c.env.STANDIN_PIDFILE = pidFile;
    const p = spawn(process.execPath, [BERTH_BIN, '--root', c.root, 'build', '--builder', 'buildkit', '--progress', 'plain', '-t', 'x', c.ctx], { env: { ...process.env, ...c.env } });
    let stderr = '';
    p.stderr.on('data', (b: Buffer) => void (stderr += b.toString()));
    const deadline = Date.now() + 20_000;
    while (!stderr.includes('#3') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const standinPid = Number(await readFile(pidFile, 'utf8'));
    p.kill('SIGINT');
    const code = await new Promise((r) => p.on('close', r));
    expect(code).toBe(130);
    expect(stderr).toMatch(/berth: build interrupted: buildctl stopped, nothing tagged/);
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      try {
        process.kill(standinPid, 0);
        await new Promise((r) => setTimeout(r, 100));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
    expect((await storeState(c.root)).names).toEqual([]);
  });

  it('argument errors (exit 2) and missing files (exit 3) never reach buildctl', async () => {
    const c = await setup();
    const outside = join(c.root, '..', 'Dockerfile.outside');
    await writeFile(outside, 'FROM base\n');
    const cases: [string[], number, RegExp][] = [
      [['build', join(c.ctx, 'nope')], 3, /build context .*nope: no such file or directory/],
      [['build', '-f', join(c.ctx, 'Nofile'), c.ctx], 3, /Dockerfile .*Nofile not found/],
      [['build', '-f', outside, c.ctx], 2, /is outside the build context/],
      [['build', '-o', 'type=ftp,dest=/x', c.ctx], 2, /unknown type "ftp"/],
      [['build', '--build-arg', '=x', c.ctx], 2, /not a valid argument name/],
      [['build', '--build-arg', 'A B=1', c.ctx], 2, /not a valid argument name/],
      [['build', '--secret', 'src=/x', c.ctx], 2, /--secret "src=\/x": no id/],
      [['build', '--secret', 'id=a,src=/x,env=Y', c.ctx], 2, /give src or env, not both/],
      [['build', '--secret', 'id=a,bogus', c.ctx], 2, /is not key=value/],
      [['build', '--network', 'bridge0', c.ctx], 2, /--network bridge0/],
      [['build', '-f', '-', '-'], 2, /cannot both come from stdin/],
    ];
    for (const [args, code, msg] of cases) {
      const r = await runBerth(['--progress', 'none', args[0]!, '--builder', 'buildkit', ...args.slice(1)], { root: c.root, env: c.env, input: '' });
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(oneLine(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
    // buildctl may have been asked its version, never to build.
    const calls = existsSync(c.log) ? (await readFile(c.log, 'utf8')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]) : [];
    expect(calls.filter((a) => a.includes('build'))).toEqual([]);
    expect(await storeState(c.root)).toEqual({ names: [], blobs: 0 });
  });

  it('missing buildctl, a too-old buildctl, an unreachable daemon: UNAVAILABLE (8) naming what to do', async () => {
    const c = await setup();
    const missing = await runBerth(['build', '--builder', 'buildkit', c.ctx], { root: c.root, env: { ...c.env, BERTH_BUILDCTL: '/nonexistent/buildctl' } });
    expect(missing.code).toBe(8);
    expect(missing.stderr).toMatch(/^berth: \/nonexistent\/buildctl not found: install BuildKit/m);
    // (its own root: berth remembers a buildctl's version per binary)
    const old = await runBerth(['build', '--builder', 'buildkit', c.ctx], { root: join(c.root, '..', 'root-old'), env: { ...c.env, STANDIN_VERSION: 'v0.10.6' } });
    expect(old.code).toBe(8);
    expect(old.stderr).toMatch(/^berth: .* v0\.10\.6 is too old: install buildctl v0\.11 or newer/m);
    const gone = await runBerth(['build', '--builder', 'buildkit', '--buildkit-addr', `unix://${join(c.root, 'none.sock')}`, c.ctx], { root: c.root, env: c.env });
    expect(gone.code).toBe(8);
    expect(gone.stderr).toMatch(/^berth: the BuildKit daemon at unix:\/\/.*none\.sock does not answer \(dial unix .*none\.sock: connect: no such file or directory\)/m);
    // auto with no BuildKit answering: the built-in builder, saying so and why, in one line
    // (the context's base image is in no store here, so that build then fails on its FROM).
    const auto = await runBerth(['build', '--progress', 'plain', '--buildkit-addr', 'tcp://127.0.0.1:1', c.ctx], { root: c.root, env: c.env });
    expect(auto.stderr).toMatch(/builder: builtin \(BuildKit: BuildKit at tcp:\/\/127\.0\.0\.1:1 does not answer/);
    expect(auto.code).not.toBe(0);
    expect(await storeState(c.root)).toEqual({ names: [], blobs: 0 });
  });
});

describe('daemon addresses', () => {
  it('tcp:// with TLS flags as buildctl names them; docker-container:// passed through untouched', async () => {
    const c = await setup();
    const tcp = createServer((s) => s.end());
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const port = (tcp.address() as { port: number }).port;
    try {
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(join(c.ctx, '..', f), 'pem');
      const pem = (f: string) => join(c.ctx, '..', f);
      const r = await runBerth(['build', '--builder', 'buildkit', '-q', '--buildkit-addr', `tcp://127.0.0.1:${port}`, '--tlscacert', pem('ca.pem'), '--tlscert', pem('cert.pem'), '--tlskey', pem('key.pem'), '--tlsservername', 'bk.example', c.ctx], { root: c.root, env: c.env });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const a = await argvOf(c);
      expect(a.slice(0, a.indexOf('build'))).toEqual(['--addr', `tcp://127.0.0.1:${port}`, '--tlsservername', 'bk.example', '--tlscacert', pem('ca.pem'), '--tlscert', pem('cert.pem'), '--tlskey', pem('key.pem')]);
    } finally {
      await new Promise((r) => tcp.close(r));
    }
    await writeFile(c.log, '');
    const d = await runBerth(['build', '--builder', 'buildkit', '-q', c.ctx], { root: c.root, env: { ...c.env, BUILDKIT_HOST: 'docker-container://buildkitd' } });
    expect(d.code).toBe(8);
    expect(d.stderr).toMatch(/^berth: the BuildKit daemon at docker-container:\/\/buildkitd does not answer \(connection helper docker-container is not available here\)/);
    expect(flagValues(await argvOf(c), '--addr')).toEqual(['docker-container://buildkitd']);
  });
});

describe('a private buildkitd when none answers (stand-in buildkitd, as root)', () => {
  it.skipIf(process.getuid?.() !== 0 || existsSync('/run/buildkit/buildkitd.sock'))('starts one under the root, stops it after the build; --keep-buildkitd and berth buildkit stop', async () => {
    const c = await setup();
    const env = { ...c.env, BUILDKIT_HOST: '', BERTH_BUILDKITD: DAEMON_STANDIN };
    const r = await runBerth(['build', '--progress', 'plain', '-t', 'priv', c.ctx], { root: c.root, env });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`builder: buildkit (no daemon answers, but ${DAEMON_STANDIN} can be started)`);
    expect(r.stderr).toContain(`buildkit: started a private buildkitd (${DAEMON_STANDIN}, state in ${join(c.root, 'buildkit')}), stopped after the build`);
    expect(flagValues(await argvOf(c), '--addr')).toEqual([`unix://${join(c.root, 'buildkit', 'buildkitd.sock')}`]);
    expect(existsSync(join(c.root, 'buildkit', 'buildkitd.pid'))).toBe(false);
    expect(existsSync(join(c.root, 'buildkit', 'buildkitd.sock'))).toBe(false);

    const k = await runBerth(['build', '--builder', 'buildkit', '-q', '--keep-buildkitd', '-t', 'priv2', c.ctx], { root: c.root, env });
    expect(k.code).toBe(0);
    const pid = Number(await readFile(join(c.root, 'buildkit', 'buildkitd.pid'), 'utf8'));
    expect(() => process.kill(pid, 0)).not.toThrow();
    // The next build uses the kept daemon without starting another.
    const again = await runBerth(['build', '--builder', 'buildkit', '--progress', 'plain', '-t', 'priv3', c.ctx], { root: c.root, env });
    expect(again.code).toBe(0);
    expect(again.stderr).toContain("buildkit: berth's running buildkitd");
    const stop = await runBerth(['buildkit', 'stop'], { root: c.root });
    expect(stop.stdout).toBe('stopped buildkitd\n');
    expect(() => process.kill(pid, 0)).toThrow();
    expect((await runBerth(['buildkit', 'stop'], { root: c.root })).stdout).toBe('no buildkitd of berth runs for this root\n');
  });
});
