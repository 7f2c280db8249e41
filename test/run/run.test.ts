/**
 * Containers on real runc, as root, through the built CLI (dist). The busybox image comes from
 * test/fixtures/busybox-image.ts; every test checks /proc/mounts is clean afterwards.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { BERTH_BIN, runBerth, startRegistry } from '../kit/index.js';
import { busyboxImage } from '../fixtures/busybox-image.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('test/run: skipped: running containers with runc needs root (run the suite as root)');

const IMG = 'berth.test/busybox:latest';
let root = '';

async function mountsUnder(dir: string): Promise<string[]> {
  const m = await readFile('/proc/mounts', 'utf8');
  return m.split('\n').filter((l) => l.split(' ')[1]?.startsWith(dir));
}

function berth(args: string[], input?: string) {
  return runBerth(args, { root, ...(input !== undefined ? { input } : {}), timeoutMs: 50_000 });
}

/** A berth process we can signal. */
function spawnBerth(args: string[]) {
  const p = spawn(process.execPath, [BERTH_BIN, '--root', root, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (b: Buffer) => void (stdout += b));
  p.stderr.on('data', (b: Buffer) => void (stderr += b));
  const done = new Promise<{ code: number | null }>((resolve) => p.on('close', (code) => resolve({ code })));
  return {
    p,
    done,
    out: () => stdout,
    err: () => stderr,
    async waitFor(text: string, ms = 10_000) {
      const t0 = Date.now();
      while (!stdout.includes(text)) {
        if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${JSON.stringify(text)}; stdout=${stdout} stderr=${stderr}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

describe.skipIf(!isRoot)('berth run on runc', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'berth-run-'));
    const store = await ContentStore.open(root);
    await busyboxImage(store, IMG);
    // The first run unpacks the image and warns once about an old runc (Debian's 1.1.5).
    const first = await berth(['run', '--rm', IMG, 'true']);
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/^(berth: warning: runc .* predates the 2025 security fixes.*\n)?$/);
    expect((await berth(['run', '--rm', IMG, 'true'])).stderr).toBe('');
  });

  afterEach(async () => {
    expect(await mountsUnder(root)).toEqual([]);
  });

  afterAll(async () => {
    if (!root) return;
    const ps = await berth(['ps', '-aq', '--no-trunc']);
    const ids = ps.stdout.split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    if ((await mountsUnder(root)).length === 0) await rm(root, { recursive: true, force: true });
  });

  it('propagates exit codes; a missing command is 127, a non-executable one 126', async () => {
    const ok = await berth(['run', '--rm', IMG, 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(ok.code).toBe(7);
    expect(ok.stdout).toBe('out\n');
    expect(ok.stderr).toBe('err\n');
    const missing = await berth(['run', '--rm', IMG, 'nope-not-here']);
    expect(missing.code).toBe(127);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/^berth: command "nope-not-here" not found in the container/);
    const noexec = await berth(['run', '--rm', IMG, '/etc/passwd']);
    expect(noexec.code).toBe(126);
    expect(noexec.stderr).toMatch(/cannot be executed/);
    // --rm removed all of them
    expect((await berth(['ps', '-aq'])).stdout).toBe('');
  });

  it('forwards SIGTERM to a foreground container and reports a signal death as 128+N', async () => {
    const b = spawnBerth(['run', '--rm', IMG, 'sh', '-c', 'trap "echo got-term; exit 42" TERM; echo ready; while :; do sleep 0.05; done']);
    await b.waitFor('ready');
    b.p.kill('SIGTERM');
    expect((await b.done).code).toBe(42);
    expect(b.out()).toContain('got-term');

    // --init: tini is PID 1, so a TERM reaches sleep (no handler) and kills it: 128+15
    if (existsSync('/usr/bin/tini-static')) {
      const i = spawnBerth(['run', '--rm', '--init', IMG, 'sh', '-c', 'echo "pid1=$(cat /proc/1/comm)"; exec sleep 30']);
      await i.waitFor('pid1=');
      await new Promise((r) => setTimeout(r, 200));
      i.p.kill('SIGTERM');
      expect((await i.done).code).toBe(143);
      expect(i.out()).toBe('pid1=docker-init\n');
    }
    const d = await berth(['run', '-d', '--name', 'sig', IMG, 'sleep', '30']);
    expect(d.code).toBe(0);
    expect((await berth(['kill', '-s', 'KILL', 'sig'])).code).toBe(0);
    const w = await berth(['wait', 'sig']);
    expect(w.stdout.trim()).toBe('137');
    expect((await berth(['ps', '-a'])).stdout).toMatch(/Exited \(137\)/);
    expect((await berth(['rm', 'sig'])).code).toBe(0);
  });

  it('logs foreground containers too, passes stdin with -i, and prunes stopped containers', async () => {
    const fg = await berth(['run', '--name', 'fg', '-i', IMG, 'sh', '-c', 'cat; echo done >&2; exit 4'], 'typed in\n');
    expect(fg.code).toBe(4);
    expect(fg.stdout).toBe('typed in\n');
    const logs = await berth(['logs', 'fg']);
    expect(logs.stdout).toBe('typed in\n');
    expect(logs.stderr).toBe('done\n');
    expect((await berth(['ps', '-a', '--format', 'json'])).stdout).toMatch(/"Names":"fg".*"ExitCode":4/);
    const prune = await berth(['container', 'prune', '-f']);
    expect(prune.stdout).toMatch(/Total containers removed: 1/);
    expect((await berth(['ps', '-aq'])).stdout).toBe('');
  });

  it('sets env, user by name, workdir and entrypoint as docker does', async () => {
    const envFile = join(root, 'env.list');
    await writeFile(envFile, '# comment\nFROM_FILE=yes\n');
    const r = await berth(['run', '--rm', '-e', 'FOO=bar baz', '--env-file', envFile, '-u', 'app', '-w', '/data/x', IMG, 'sh', '-c', 'echo "$FOO|$FROM_FILE|$HOME|$PATH"; id; pwd; ls -ld /data/x']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [env, id, pwd, ls] = r.stdout.split('\n');
    expect(env).toBe('bar baz|yes|/home/app|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(id).toMatch(/^uid=1000\(app\) gid=1000\(app\) groups=.*10\(wheel\).*29\(audio\)/);
    expect(pwd).toBe('/data/x');
    expect(ls).toMatch(/ app +app /); // docker creates the working directory owned by the user
    const ep = await berth(['run', '--rm', '--entrypoint', 'echo', IMG, 'hello', 'world']);
    expect(ep.stdout).toBe('hello world\n');
    const host = await berth(['run', '--rm', '--hostname', 'boat', IMG, 'sh', '-c', 'hostname; cat /etc/hostname; grep boat /etc/hosts; echo "$HOSTNAME"']);
    expect(host.stdout.split('\n').slice(0, 2)).toEqual(['boat', 'boat']);
    expect(host.stdout).toMatch(/127\.0\.1\.1\s+boat/);
  });

  it('mounts binds read-only and read-write, and honours --read-only with --tmpfs', async () => {
    const dir = join(root, 'shared');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'in.txt'), 'from host\n');
    const ro = await berth(['run', '--rm', '-v', `${dir}:/mnt:ro`, IMG, 'sh', '-c', 'cat /mnt/in.txt; touch /mnt/new 2>/dev/null && echo wrote || echo denied']);
    expect(ro.stdout).toBe('from host\ndenied\n');
    const rw = await berth(['run', '--rm', '-v', `${dir}:/mnt`, IMG, 'sh', '-c', 'echo hi > /mnt/out.txt']);
    expect(rw.code).toBe(0);
    expect(await readFile(join(dir, 'out.txt'), 'utf8')).toBe('hi\n');
    const rofs = await berth(['run', '--rm', '--read-only', '--tmpfs', '/tmp', IMG, 'sh', '-c', 'touch /x 2>/dev/null && echo root-writable; touch /tmp/y && echo tmp-ok; grep " /tmp " /proc/mounts | cut -d" " -f3']);
    expect(rofs.stdout).toBe('tmp-ok\ntmpfs\n');
  });

  it('runs detached, follows logs, stops and waits', async () => {
    const d = await berth(['run', '-d', '--name', 'det', IMG, 'sh', '-c', 'trap "echo bye; exit 3" TERM; echo hello; echo warn >&2; while :; do sleep 0.05; done']);
    expect(d.code).toBe(0);
    expect(d.stdout.trim()).toMatch(/^[a-f0-9]{64}$/);
    const follow = spawnBerth(['logs', '-f', 'det']);
    await follow.waitFor('hello');
    const ps = await berth(['ps', '--format', 'json']);
    const row = JSON.parse(ps.stdout.trim().split('\n')[0]!) as { Names: string; State: string };
    expect(row).toMatchObject({ Names: 'det', State: 'running' });
    const stop = await berth(['stop', '-t', '5', 'det']);
    expect(stop.code).toBe(0);
    expect((await berth(['wait', 'det'])).stdout.trim()).toBe('3');
    expect((await follow.done).code).toBe(0);
    expect(follow.out()).toBe('hello\nbye\n');
    expect(follow.err()).toBe('warn\n');
    const tail = await berth(['logs', '--tail', '1', '-t', 'det']);
    expect(tail.stdout).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z bye\n$/);
    expect((await berth(['ps', '-a'])).stdout).toMatch(/Exited \(3\).*det/);
    // started again, it runs the same command on the same filesystem
    expect((await berth(['start', 'det'])).code).toBe(0);
    expect((await berth(['stop', '-t', '5', 'det'])).code).toBe(0);
    const logs = await berth(['logs', 'det']);
    expect(logs.stdout).toBe('hello\nbye\nhello\nbye\n');
    expect((await berth(['rm', 'det'])).code).toBe(0);
    expect((await berth(['ps', '-aq'])).stdout).toBe('');
  });

  it('execs into a running container with its capabilities, env and users', async () => {
    const d = await berth(['run', '-d', '--name', 'ex', '-e', 'MARK=1', IMG, 'sleep', '60']);
    expect(d.code).toBe(0);
    const r = await berth(['exec', '-e', 'EXTRA=2', 'ex', 'sh', '-c', 'echo $MARK$EXTRA; grep CapEff /proc/self/status; pwd']);
    expect(r.stdout).toBe('12\nCapEff:\t00000000a80425fb\n/\n');
    expect((await berth(['exec', '-u', 'app', '-w', '/tmp', 'ex', 'sh', '-c', 'id -u; pwd'])).stdout).toBe('1000\n/tmp\n');
    const envFile = join(root, 'exec-env.list');
    await writeFile(envFile, '# comment\nFROM_FILE=yes\nEXTRA=file\n');
    expect((await berth(['exec', '--env-file', envFile, '-e', 'EXTRA=flag', 'ex', 'sh', '-c', 'echo $MARK $FROM_FILE $EXTRA'])).stdout).toBe('1 yes flag\n');
    expect((await berth(['exec', '-i', 'ex', 'cat'], 'piped\n')).stdout).toBe('piped\n');
    expect((await berth(['exec', 'ex', 'sh', '-c', 'exit 5'])).code).toBe(5);
    expect((await berth(['exec', 'ex', 'nope'])).code).toBe(127);
    const proc = await berth(['exec', '-w', '/proc/1', 'ex', 'ls']);
    expect(proc.code).toBe(2);
    expect(proc.stderr).toMatch(/never starts under \/proc/);
    expect((await berth(['rm', 'ex'])).code).toBe(2); // running: needs -f
    expect((await berth(['rm', '-f', 'ex'])).code).toBe(0);
    expect((await berth(['exec', 'ex', 'true'])).code).toBe(3);
  });

  it('starts 10 containers at once', async () => {
    const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => berth(['run', '--rm', '--name', `many${i}`, IMG, 'sh', '-c', `echo ${i} $HOSTNAME`])));
    for (const [i, r] of rs.entries()) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^${i} [a-f0-9]{12}\\n$`));
    }
    expect(new Set(rs.map((r) => r.stdout.split(' ')[1])).size).toBe(10);
  });

  it("has docker's default capabilities and masks /proc/kcore", async () => {
    const r = await berth(['run', '--rm', IMG, 'sh', '-c', 'grep -E "^Cap(Eff|Inh|Amb)" /proc/self/status; echo x > /proc/sys/kernel/domainname 2>/dev/null || echo sys-ro']);
    expect(r.stdout).toBe('CapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\nCapAmb:\t0000000000000000\nsys-ro\n');
    // Masked files are /dev/null mounts reading empty. This kernel may lack /proc/kcore: every
    // masked file the host has is checked, kcore among them wherever it exists.
    const masked = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug'].filter((p) => existsSync(p));
    expect(masked.length).toBeGreaterThan(0);
    const m = await berth(['run', '--rm', IMG, 'sh', '-c', masked.map((p) => `echo "${p} $(grep -c " ${p} " /proc/mounts) $(cat ${p} | wc -c)"`).join('; ')]);
    expect(m.stdout).toBe(masked.map((p) => `${p} 1 0\n`).join(''));
    const drop = await berth(['run', '--rm', '--cap-drop', 'ALL', '--cap-add', 'CHOWN', IMG, 'grep', 'CapEff', '/proc/self/status']);
    expect(drop.stdout).toBe('CapEff:\t0000000000000001\n');
  });

  it('rejects bad input with one line and leaves nothing behind', async () => {
    const before = (await berth(['ps', '-aq'])).stdout;
    const cases: [string[], number, RegExp][] = [
      [['run', '--rm', '--pull', 'never', 'berth.test/absent:1', 'true'], 3, /no such image/],
      [['run', '--rm', '-v', 'named:/x', IMG, 'true'], 2, /invalid mount spec/],
      [['run', '--rm', '-v', '/definitely/not/here:/x', IMG, 'true'], 2, /does not exist/],
      [['run', '--rm', '-u', 'ghost', IMG, 'true'], 2, /unable to find user ghost/],
      [['run', '--rm', '--network', 'bridge0', IMG, 'true'], 2, /unsupported --network/],
      [['run', '--rm', '--pull', 'never', 'berth.test/absent:2', 'true'], 3, /no such image/],
      [['run', '--rm', '--pull', 'sometimes', IMG, 'true'], 2, /invalid --pull/],
      [['run', '--rm', '--bogus', IMG], 2, /unknown flag/],
    ];
    for (const [args, code, re] of cases) {
      const r = await berth(args);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(re);
    }
    const noRunc = await runBerth(['run', '--rm', IMG, 'true'], { root, env: { BERTH_RUNC: '/nonexistent/runc' }, timeoutMs: 50_000 });
    expect(noRunc.code).toBe(8);
    expect(noRunc.stderr).toBe('berth: runc not found (/nonexistent/runc): install it: apt-get install runc\n');
    expect((await berth(['run', '-d', '--name', 'taken', IMG, 'sleep', '30'])).code).toBe(0);
    const dup = await berth(['run', '--rm', '--name', 'taken', IMG, 'true']);
    expect(dup.code).toBe(4);
    expect(dup.stderr).toMatch(/name "taken" is already in use/);
    expect((await berth(['rm', '-f', 'taken'])).code).toBe(0);
    expect((await berth(['ps', '-aq'])).stdout).toBe(before);
    // no active snapshot or container directory was left by the failed runs (dot files are berth's caches)
    expect(await readdir(join(root, 'snapshots', 'a'))).toEqual([]);
    expect((await readdir(join(root, 'containers'))).filter((n) => !n.startsWith('.'))).toEqual([]);
    expect(await readdir(join(root, 'containers', '.names'))).toEqual([]);
  });

  it('gives -t a real terminal', async () => {
    // script(1) provides the pty berth's stdin/stdout are attached to
    const b = spawn('script', ['-qec', `${process.execPath} ${BERTH_BIN} --root ${root} run --rm -t ${IMG} sh -c 'tty; exit 5'`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    b.stdout.on('data', (d: Buffer) => void (out += d));
    const code = await new Promise<number | null>((resolve) => b.on('close', resolve));
    expect(out).toMatch(/\/dev\/pts\/0/);
    expect(code).toBe(5);
  });

  it('replaces symlinks an image put where the runtime mounts', async () => {
    const canary = join(root, 'canary');
    await writeFile(canary, 'untouched\n');
    const store = await ContentStore.open(root);
    await busyboxImage(store, 'berth.test/links:1', {
      symlinks: { '/etc/hosts': `../../../../../../../..${canary}`, '/etc/resolv.conf': canary, '/dev': '/tmp', '/proc': '../../../../../../proc' },
    });
    const r = await berth(['run', '--rm', 'berth.test/links:1', 'sh', '-c', 'grep -c localhost /etc/hosts; ls -ld /dev /proc | cut -c1; echo pwned > /etc/hosts; echo pwned > /etc/resolv.conf']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('2\nd\nd\n');
    expect(await readFile(canary, 'utf8')).toBe('untouched\n');
  });

  it('--pull missing pulls an absent image from a registry, --pull never does not', async () => {
    const reg = await startRegistry();
    const root2 = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'berth-run2-'));
    try {
      const name = `${reg.host}/bb:1`;
      expect((await berth(['tag', IMG, name])).code).toBe(0);
      const push = await berth(['push', '-q', name]);
      expect(push.stderr).toBe('');
      const never = await runBerth(['run', '--rm', '--pull', 'never', name, 'true'], { root: root2, timeoutMs: 50_000 });
      expect(never.code).toBe(3);
      const r = await runBerth(['run', '--rm', name, 'echo', 'pulled'], { root: root2, timeoutMs: 50_000 });
      expect(r.stdout).toBe('pulled\n');
      expect(r.code).toBe(0);
      expect(await mountsUnder(root2)).toEqual([]);
    } finally {
      await reg.stop();
      if ((await mountsUnder(root2)).length === 0) await rm(root2, { recursive: true, force: true });
    }
  });

  it('rm -f cleans up after a crashed monitor', async () => {
    const d = await berth(['run', '-d', '--name', 'crash', IMG, 'sleep', '60']);
    expect(d.code).toBe(0);
    const id = d.stdout.trim();
    const state = JSON.parse(await readFile(join(root, 'containers', id, 'state.json'), 'utf8')) as { monitorPid: number };
    process.kill(state.monitorPid, 'SIGKILL');
    for (let i = 0; i < 100 && existsSync(`/proc/${state.monitorPid}`) && !(await readFile(`/proc/${state.monitorPid}/stat`, 'utf8').catch(() => ') Z')).includes(') Z'); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await berth(['ps', '-a'])).stdout).toMatch(/Dead.*crash/);
    expect(await mountsUnder(join(root, 'containers', id))).toHaveLength(1);
    const rmr = await berth(['rm', '-f', 'crash']);
    expect(rmr.stderr).toBe('');
    expect(rmr.code).toBe(0);
    expect((await berth(['ps', '-aq'])).stdout).toBe('');
    const runcState = await readFile(join(root, 'runc', id, 'state.json'), 'utf8').catch(() => 'gone');
    expect(runcState).toBe('gone');
  });
});
