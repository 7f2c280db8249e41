/**
 * `berth diff` and `berth commit` on real runc containers, through the built CLI (dist): the
 * changes listed as docker lists them (runtime mount points left out), a committed image that
 * runs, saves and loads in skopeo, umoci and containerd, reproducible digests with
 * SOURCE_DATE_EPOCH, and bad input that leaves the store as it was.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { runBerth, snapshotTree, testdir } from '../kit/index.js';
import { busyboxImage } from '../fixtures/busybox-image.js';
import { startContainerd } from '../kit/containerd.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const IMG = 'berth.test/busybox:latest';
let root = '';

function berth(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runBerth(args, { root, env, timeoutMs: 50_000 });
}

/** The store and the snapshots, as files: "exactly as before". */
async function state(): Promise<string[]> {
  const skip = (rel: string) => rel.startsWith('locks') || rel.startsWith('leases') || rel.endsWith('.lock') || rel.startsWith('snapshots/tmp');
  const tree = await snapshotTree(root, { skip: (rel) => skip(rel) || rel.startsWith('containers') || rel.startsWith('runc') || /^snapshots\/[ac]\/[^/]+\//.test(rel) });
  return tree;
}

describe.skipIf(!isRoot)('berth diff / berth commit', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'berth-commit-'));
    const store = await ContentStore.open(root);
    await busyboxImage(store, IMG);
    const r = await berth([
      'run',
      '--name',
      'changed',
      IMG,
      'sh',
      '-c',
      'mkdir -p /new/sub && echo hello > /new/file && chmod 4755 /new/file && ln /new/file /new/hard && rm /etc/group && echo more >> /etc/passwd && mkfifo /new/fifo',
    ]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    if (root) {
      await runBerth(['rm', '-f', 'changed', 'pristine', 'gone'], { root }).catch(() => {});
      await rm(root, { recursive: true, force: true });
    }
  });

  it('diff lists A/C/D like docker, without the runtime mount points', async () => {
    const r = await berth(['diff', 'changed']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['C /etc', 'D /etc/group', 'C /etc/passwd', 'A /new', 'A /new/fifo', 'A /new/file', 'A /new/hard', 'A /new/sub']);
    const j = await berth(['diff', '--format', 'json', 'changed']);
    expect(JSON.parse(j.stdout)).toContainEqual({ Kind: 'D', Path: '/etc/group' });
    // A container that changed nothing has an empty diff (its /proc, /dev, /etc/hosts stubs are not changes).
    expect((await berth(['run', '--name', 'pristine', IMG, 'true'])).code).toBe(0);
    const p = await berth(['diff', 'pristine']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toBe('');
  });

  it('commit twice with SOURCE_DATE_EPOCH gives the same digest; the image runs with its --change', async () => {
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    const a = await berth(['commit', '-m', 'msg', '--author', 'Ann <a@b.c>', '-c', 'CMD ["cat","/new/file"]', '-c', 'ENV X=1', 'changed', 'berth.test/committed:a'], env);
    expect(a.code, a.stderr).toBe(0);
    const b = await berth(['commit', '-m', 'msg', '--author', 'Ann <a@b.c>', '-c', 'CMD ["cat","/new/file"]', '-c', 'ENV X=1', 'changed', 'berth.test/committed:b'], env);
    expect(b.code, b.stderr).toBe(0);
    expect(a.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(b.stdout.trim()).toBe(a.stdout.trim());
    const store = await ContentStore.open(root);
    const imgs = await store.listImages();
    const da = imgs.find((i) => i.name === 'berth.test/committed:a')!.desc.digest;
    const db = imgs.find((i) => i.name === 'berth.test/committed:b')!.desc.digest;
    expect(db).toBe(da);

    const out = await berth(['run', '--rm', 'berth.test/committed:a']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toBe('hello\n');
    const ls = await berth(['run', '--rm', 'berth.test/committed:a', 'sh', '-c', 'stat -c "%a %h" /new/file; test -e /etc/group || echo nogroup; tail -1 /etc/passwd; echo $X']);
    expect(ls.stdout).toBe('4755 2\nnogroup\nmore\n1\n');
    const hist = await berth(['history', 'berth.test/committed:a']);
    expect(hist.code, hist.stderr).toBe(0);
    expect(hist.stdout).toContain('msg');
  });

  it('commits a running container (paused meanwhile, running again after) and with --pause=false', async () => {
    const d = await berth(['run', '-d', '--name', 'live', IMG, 'sh', '-c', 'echo live > /live; sleep 60']);
    expect(d.code, d.stderr).toBe(0);
    try {
      let r = { code: 1 as number | null, stdout: '' };
      // The detached container writes /live as it starts: wait (bounded) until the diff shows it.
      for (let i = 0; i < 100 && !r.stdout.includes('A /live'); i++) {
        r = await berth(['diff', 'live']);
        if (!r.stdout.includes('A /live')) await new Promise((res) => setTimeout(res, 100));
      }
      expect(r.stdout).toContain('A /live');
      const c = await berth(['commit', 'live', 'berth.test/live:1']);
      expect(c.code, c.stderr).toBe(0);
      const state = JSON.parse((await berth(['container', 'inspect', 'live'])).stdout)[0];
      expect(state.State.status).toBe('running');
      const runcState = JSON.parse((await run('runc', ['--root', join(root, 'runc'), 'state', state.id])).stdout);
      expect(runcState.status).toBe('running');
      const c2 = await berth(['commit', '--pause=false', 'live', 'berth.test/live:2']);
      expect(c2.code, c2.stderr).toBe(0);
      const out = await berth(['run', '--rm', 'berth.test/live:1', 'cat', '/live']);
      expect(out.stdout).toBe('live\n');
    } finally {
      await berth(['rm', '-f', 'live']);
    }
  });

  it('the committed image saves, and skopeo, umoci and containerd read it', async () => {
    const d = await testdir();
    const store = await ContentStore.open(root);
    const name = 'berth.test/committed:a';
    const s = await berth(['save', '-o', join(d, 'img.tar'), name]);
    expect(s.code, s.stderr).toBe(0);
    const inspect = JSON.parse((await run('skopeo', ['inspect', `docker-archive:${join(d, 'img.tar')}`])).stdout);
    expect(inspect.Layers.length).toBe(2);
    await run('skopeo', ['copy', '-q', `oci:${store.contentDir}:${name}`, `oci:${join(d, 'layout')}:x`]);
    await run('umoci', ['unpack', '--image', `${store.contentDir}:${name}`, join(d, 'bundle')]);
    const st = (await run('stat', ['-c', '%a %h', join(d, 'bundle/rootfs/new/file')])).stdout;
    expect(st.trim()).toBe('4755 2');
    await mkdir(join(d, 'ctrd'));
    const c = await startContainerd(join(d, 'ctrd'));
    try {
      await c.ctr(['images', 'import', '--no-unpack', join(d, 'img.tar')]);
      expect(await c.ctr(['images', 'ls', '-q'])).toContain(name);
      expect(await c.ctr(['images', 'check'])).toMatch(/complete/);
    } finally {
      await c.stop();
    }
  });

  it('bad input: one line, its exit code, nothing tagged, no blob or snapshot left', async () => {
    const before = await state();
    const cases: [string[], number, RegExp][] = [
      [['commit', 'no-such-container', 'berth.test/x:1'], 3, /no such container/],
      [['commit', '-c', 'FROBNICATE x', 'changed', 'berth.test/x:1'], 2, /FROBNICATE/],
      [['commit', '-c', 'EXPOSE 99999', 'changed', 'berth.test/x:1'], 2, /port/],
      [['commit', 'changed', 'Not A Name'], 2, /invalid|reference/i],
      [['commit', 'changed', `berth.test/x@sha256:${'a'.repeat(64)}`], 2, /digest/],
      [['diff', 'no-such-container'], 3, /no such container/],
    ];
    for (const [args, code, msg] of cases) {
      const r = await berth(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr.trim().split('\n').filter((l) => !l.includes('warning'))).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
    expect(await state()).toEqual(before);

    // A container whose filesystem was removed behind berth's back.
    expect((await berth(['run', '--name', 'gone', IMG, 'sh', '-c', 'echo x > /x'])).code).toBe(0);
    const before2 = await state();
    const rec = JSON.parse((await berth(['container', 'inspect', 'gone'])).stdout)[0];
    const activeDir = join(root, 'snapshots', 'a', createHash('sha256').update(rec.snapshotKey).digest('hex').slice(0, 16));
    expect((await readdir(activeDir)).length).toBeGreaterThan(0);
    await rm(activeDir, { recursive: true, force: true });
    const r = await berth(['commit', 'gone', 'berth.test/gone:1']);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/gone/);
    const after2 = await state();
    expect(after2.filter((l) => !l.startsWith('snapshots/a/'))).toEqual(before2.filter((l) => !l.startsWith('snapshots/a/')));
  });
});
