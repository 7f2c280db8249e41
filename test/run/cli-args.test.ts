/**
 * Whose arguments are whose (#9.1): everything from the image (run) or the container (exec) on
 * is the container's; berth's global flags count only before that. Help (#9.9), and `stop` of a
 * foreground `run --rm` container (#9.7). Through the built CLI (dist), on real runc.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { BERTH_BIN, runBerth } from '../kit/index.js';
import { busyboxImage } from '../fixtures/busybox-image.js';

const isRoot = process.getuid?.() === 0;
const IMG = 'berth.test/busybox:args';

describe('help', () => {
  it('`berth run --help` lists -v once (volume) and IMAGE as required', async () => {
    const r = await runBerth(['run', '--help'], { root: join(tmpdir(), 'berth-help-unused') });
    expect(r.code).toBe(0);
    expect(r.stdout.match(/^\s+-v, /gm)).toEqual(['  -v, ']);
    expect(r.stdout).toMatch(/-v, --volume/);
    expect(r.stdout).not.toMatch(/--version/);
    expect(r.stdout).toMatch(/^berth run <IMAGE> \[COMMAND\.\.\]/);
    expect(r.stdout).toMatch(/IMAGE .*\[required\]/);
    expect(existsSync(join(tmpdir(), 'berth-help-unused'))).toBe(false);
  });

  it('bare `berth` prints the help and exits 0', async () => {
    const r = await runBerth([], { root: join(tmpdir(), 'berth-help-unused') });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Commands:$/m);
    expect(r.stdout).toMatch(/berth run /);
    expect(r.stderr).toBe('');
  });
});

describe.skipIf(!isRoot)('container arguments on runc', () => {
  let root = '';
  const berth = (args: string[]) => runBerth(args, { root, timeoutMs: 50_000 });

  beforeAll(async () => {
    root = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'berth-args-'));
    await busyboxImage(await ContentStore.open(root), IMG);
    expect((await berth(['run', '--rm', IMG, 'true'])).code).toBe(0);
  });

  afterAll(async () => {
    if (!root) return;
    const ids = (await berth(['ps', '-aq', '--no-trunc'])).stdout.split('\n').filter(Boolean);
    if (ids.length) await berth(['rm', '-f', ...ids]);
    const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.split(' ')[1]?.startsWith(root));
    if (mounts.length === 0) await rm(root, { recursive: true, force: true });
  });

  it('everything after the image is the container\'s: --root, -h, --debug and -- included', async () => {
    expect(existsSync('/nope')).toBe(false);
    const r = await berth(['run', '--rm', IMG, 'sh', '-c', 'echo "$@"', 'x', '--root', '/nope', '-h', '--debug', '--']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('--root /nope -h --debug --\n');
    expect(r.code).toBe(0);
    expect(existsSync('/nope')).toBe(false);
    // nothing else happened: no container left, no other root written
    expect((await berth(['ps', '-aq'])).stdout).toBe('');

    const df = await berth(['run', '--rm', IMG, 'df', '-h', '/']);
    expect(df.code).toBe(0);
    expect(df.stderr).toBe('');
    expect(df.stdout).toMatch(/^Filesystem +Size +Used/);
    expect(df.stdout).toMatch(/ \/\n$/);

    // berth's flags before the image still count; after it they are the command's
    const before = await berth(['run', '--rm', '-e', 'A=1', '--debug', IMG, 'sh', '-c', 'echo $A "$@"', 'x', '-e', 'B=2']);
    expect(before.stdout).toBe('1 -e B=2\n');
    expect(before.code).toBe(0);
  });

  it('everything after the container is the exec command\'s', async () => {
    expect((await berth(['run', '-d', '--name', 'argx', IMG, 'sleep', '60'])).code).toBe(0);
    try {
      const r = await berth(['exec', 'argx', 'sh', '-c', 'echo "$@"', 'x', '--root', '/nope', '--help', '-v', '--debug']);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('--root /nope --help -v --debug\n');
      expect(r.code).toBe(0);
      expect(existsSync('/nope')).toBe(false);
    } finally {
      expect((await berth(['rm', '-f', 'argx'])).code).toBe(0);
    }
  });

  it('stop of a foreground run --rm container answers right every time', async () => {
    for (let k = 0; k < 4; k++) {
      const name = `fg${k}`;
      // Even rounds: a process that exits on SIGTERM; odd rounds: PID 1 ignoring it, killed at -t 0.
      const cmd = k % 2 === 0 ? ['sh', '-c', 'trap "exit 0" TERM; echo ready; while :; do sleep 0.05; done'] : ['sh', '-c', 'echo ready; exec sleep 60'];
      const fg = spawn(process.execPath, [BERTH_BIN, '--root', root, 'run', '--rm', '--name', name, IMG, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      fg.stdout.on('data', (b: Buffer) => void (out += b));
      fg.stderr.on('data', (b: Buffer) => void (err += b));
      const done = new Promise<number | null>((resolve) => fg.on('close', resolve));
      const t0 = Date.now();
      while (!out.includes('ready') && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 10));
      expect(out, err).toBe('ready\n');
      const stop = await berth(['stop', ...(k % 2 ? ['-t', '0'] : []), name]);
      expect(stop.stderr, `round ${k}`).toBe('');
      expect(stop.stdout).toBe(`${name}\n`);
      expect(stop.code).toBe(0);
      expect(await done).toBe(k % 2 === 0 ? 0 : 137);
      expect(err).toBe('');
      expect((await berth(['ps', '-aq'])).stdout).toBe('');
    }
    expect((await readdir(join(root, 'containers', '.names')))).toEqual([]);
  });
});
