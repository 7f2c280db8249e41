import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { busyboxImage } from '../fixtures/busybox-image.js';
import { randomImage, runBerth, snapshotTree, testdir } from '../kit/index.js';

const isRoot = process.getuid?.() === 0;

async function storeWithImage() {
  const root = await testdir();
  const store = await ContentStore.open(root);
  const img = await randomImage(store, { name: 'berth.test/app:v1', layers: 2 });
  return { root, store, img };
}

describe('image commands', () => {
  it('images, tag, inspect, history, rmi, prune', async () => {
    const { root, img } = await storeWithImage();
    let r = await runBerth(['images'], { root });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/m);
    expect(r.stdout).toMatch(/^berth\.test\/app\s+v1\s+[0-9a-f]{12}\s+/m);
    expect((await runBerth(['tag', 'berth.test/app:v1', 'other:latest'], { root })).code).toBe(0);
    r = await runBerth(['images', '--format', 'json'], { root });
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l)) as { Repository: string; Tag: string; Digest: string }[];
    expect(rows.map((x) => `${x.Repository}:${x.Tag}`).sort()).toEqual(['berth.test/app:v1', 'other:latest']);
    expect(rows.every((x) => x.Digest === img.root.digest)).toBe(true);
    r = await runBerth(['images', '-q'], { root });
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    r = await runBerth(['images', '--digests', 'other'], { root });
    expect(r.stdout).toContain(img.root.digest);
    expect(r.stdout).not.toContain('berth.test/app');
    r = await runBerth(['inspect', 'other'], { root });
    const [info] = JSON.parse(r.stdout);
    expect(info.Digest).toBe(img.root.digest);
    expect(info.RootFS.Layers).toEqual(img.config.rootfs.diff_ids);
    expect(info.ImageConfig.rootfs.diff_ids).toEqual(img.config.rootfs.diff_ids);
    r = await runBerth(['history', 'other'], { root });
    expect(r.stdout).toMatch(/test layer 1/);
    r = await runBerth(['rmi', 'other'], { root });
    expect(r.stdout.trim()).toBe('Untagged: docker.io/library/other:latest');
    r = await runBerth(['rmi', 'berth.test/app:v1'], { root });
    expect(r.code).toBe(0);
    // The last name: the image goes, with its blobs, as docker says.
    expect(r.stdout).toContain(`Untagged: berth.test/app:v1\nDeleted: ${img.config ? img.manifest.config.digest : ''}`);
    expect(r.stdout).toContain(`Deleted: ${img.root.digest}`);
    r = await runBerth(['image', 'prune'], { root });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('Total reclaimed space: 0B\n');
    expect((await runBerth(['system', 'df', '--format', 'json'], { root })).stdout).toMatch(/"count": 0/);
  });

  it.runIf(isRoot)('rmi refuses while a container uses the image, unless -f', async () => {
    const root = await testdir();
    const img = await busyboxImage(await ContentStore.open(root), 'berth.test/app:v1');
    const run = await runBerth(['run', '-d', '--name', 'web', 'berth.test/app:v1', 'sleep', '30'], { root });
    expect(run.code, run.stderr).toBe(0);
    try {
      let r = await runBerth(['rmi', 'berth.test/app:v1'], { root });
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/in use by container web/);
      r = await runBerth(['rmi', '-f', 'berth.test/app:v1'], { root });
      expect(r.code).toBe(0);
      // The container still holds the content against prune.
      r = await runBerth(['image', 'prune'], { root });
      expect(r.code).toBe(0);
      expect(r.stdout).not.toContain(img.manifestDesc.digest);
      expect(r.stdout).not.toContain(img.layerDesc.digest);
    } finally {
      expect((await runBerth(['rm', '-f', 'web'], { root })).code).toBe(0);
    }
    // Once the container is gone, prune takes the content.
    const r = await runBerth(['image', 'prune'], { root });
    expect(r.stdout).toContain(`Deleted: ${img.layerDesc.digest}`);
  });

  it('bad input: one line, documented exit code, store unchanged', async () => {
    const { root } = await storeWithImage();
    const before = await snapshotTree(join(root, 'content'));
    const cases: [string[], number, RegExp][] = [
      [['inspect', 'Bad/Name'], 2, /invalid reference "Bad\/Name": repository name must be lowercase/],
      [['inspect', 'nosuch:1'], 3, /no such image: nosuch:1/],
      [['tag', 'berth.test/app:v1', 'UPPER'], 2, /must be lowercase/],
      [['tag', 'nosuch', 'x:1'], 3, /no such image/],
      [['rmi', 'nosuch'], 3, /no such image/],
      [['history', 'sha256:' + 'f'.repeat(64)], 3, /no such image/],
      [['images', '--format', '{{.Nope'], 2, /invalid --format template/],
      [['frobnicate'], 2, /Unknown argument|Unknown command/],
    ];
    for (const [args, code, msg] of cases) {
      const r = await runBerth(args, { root });
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split('\n'), `one line for ${args.join(' ')}`).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout).toBe('');
    }
    expect(await snapshotTree(join(root, 'content'))).toEqual(before);
  });

  it('system check names a corrupted blob and exits non-zero', async () => {
    const { root, store, img } = await storeWithImage();
    const p = store.blobPath(img.layers[0]!.desc.digest);
    const b = await readFile(p);
    b[b.length - 1] ^= 1;
    await writeFile(p, b);
    const r = await runBerth(['system', 'check'], { root });
    expect(r.code).toBe(5);
    expect(r.stdout).toContain(img.layers[0]!.desc.digest);
    expect(r.stderr).toMatch(/store check found 1 problem/);
    // A damaged config is refused on use too, with the way out.
    const cfg = store.blobPath(img.manifest.config.digest);
    const c = await readFile(cfg);
    c[0] ^= 1;
    await writeFile(cfg, c);
    const i = await runBerth(['inspect', 'berth.test/app:v1'], { root });
    expect(i.code).toBe(5);
    expect(i.stderr).toMatch(/^berth: store blob sha256:[0-9a-f]{64}: content digest .* does not match: the store is damaged: run berth system check/);
    expect(i.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('takes over a stale lock left by a killed process', async () => {
    const { root } = await storeWithImage();
    // A pid that is not running: the lock of a process killed with -9.
    const dead = Number(execFileSync('sh', ['-c', 'sh -c "echo \\$\\$"'], { encoding: 'utf8' }).trim());
    await writeFile(join(root, 'locks', 'index.lock'), JSON.stringify({ pid: dead, host: (await import('node:os')).hostname(), token: 'dead' }));
    const r = await runBerth(['tag', 'berth.test/app:v1', 'after-crash:1'], { root, timeoutMs: 20_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it.runIf(isRoot)('an unwritable root gets one clear line', async () => {
    const dir = await testdir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', dir]);
    try {
      const r = await runBerth(['images'], { root: join(dir, 'store') });
      expect(r.code).toBe(8);
      expect(r.stderr).toMatch(/opening store at .*store: permission denied \(EROFS\)/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      execFileSync('umount', [dir]);
    }
  });
});

describe('other tools read the store', () => {
  it('skopeo inspects and copies, umoci lists and stats', async () => {
    const { root, img } = await storeWithImage();
    const layout = join(root, 'content');
    const out = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${layout}:berth.test/app:v1`], { encoding: 'utf8' }));
    expect(out.Digest).toBe(img.root.digest);
    expect(out.Layers).toEqual(img.layers.map((l) => l.desc.digest));
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${layout}:berth.test/app:v1`], { encoding: 'utf8' }));
    expect(raw.rootfs.diff_ids).toEqual(img.config.rootfs.diff_ids);
    const refs = execFileSync('umoci', ['ls', '--layout', layout], { encoding: 'utf8' }).trim().split('\n');
    expect(refs).toContain('berth.test/app:v1');
    const stat = execFileSync('umoci', ['stat', '--image', `${layout}:berth.test/app:v1`, '--json'], { encoding: 'utf8' });
    expect(JSON.parse(stat).history).toHaveLength(2);
    // And skopeo writes a layout berth reads (copy within the same layout under a new name).
    execFileSync('skopeo', ['copy', '-q', `oci:${layout}:berth.test/app:v1`, `oci:${layout}:berth.test/copied:v2`]);
    const r = await runBerth(['inspect', 'berth.test/copied:v2'], { root });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)[0].Digest).toBe(img.root.digest);
  });
});
