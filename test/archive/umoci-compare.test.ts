import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, readdir, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyLayer } from '../../src/archive/apply.js';
import { native } from '../../src/archive/native.js';
import { testdir } from '../kit/index.js';

const isRoot = process.getuid?.() === 0;
const sh = (cmd: string, args: string[], cwd?: string) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** paths, types, modes, owners, sizes, link counts, link targets, device numbers, capabilities, file mtimes */
async function listing(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    const p = rel ? join(root, rel) : root;
    const st = await lstat(p);
    const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : st.isFIFO() ? 'p' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : '?';
    let extra = '';
    if (type === 'l') extra = `-> ${await readlink(p)}`;
    else if (type === 'f') extra = `size=${st.size} nlink=${st.nlink} mtime=${Math.floor(st.mtimeMs / 1000)}`;
    else if (type === 'c' || type === 'b') extra = `rdev=${st.rdev}`;
    const cap = type === 'f' ? native().lgetxattr(p, 'security.capability') : null;
    out.push(`/${rel} ${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${extra}${cap ? ` cap=${cap.toString('hex')}` : ''}`);
    if (type === 'd') for (const n of (await readdir(p)).sort()) await walk(rel ? `${rel}/${n}` : n);
  };
  await walk('');
  return out;
}

describe.skipIf(!isRoot)('berth unpack agrees with umoci unpack', () => {
  it('gives the same tree for a multi-layer image built by umoci (whiteouts, opaque dirs, links, devices, owners, modes)', async () => {
    const base = await testdir();
    const a = join(base, 'a');
    await mkdir(join(a, 'usr/bin'), { recursive: true });
    await mkdir(join(a, 'etc'), { recursive: true });
    await mkdir(join(a, 'opt/lower/deep'), { recursive: true });
    await mkdir(join(a, 'home/user'), { recursive: true });
    await mkdir(join(a, 'tmp'));
    await mkdir(join(a, 'dev'));
    await writeFile(join(a, 'usr/bin/suid'), '#!/bin/sh\necho hi\n');
    await chmod(join(a, 'usr/bin/suid'), 0o4755);
    await writeFile(join(a, 'usr/bin/sgid'), 'x');
    await chown(join(a, 'usr/bin/sgid'), 0, 42);
    await chmod(join(a, 'usr/bin/sgid'), 0o2711);
    await writeFile(join(a, 'usr/bin/capped'), 'cap');
    await chmod(join(a, 'usr/bin/capped'), 0o755);
    sh('setcap', ['cap_setuid,cap_net_raw+ep', join(a, 'usr/bin/capped')]);
    await writeFile(join(a, 'usr/bin/big'), randomBytes(300_000));
    await link(join(a, 'usr/bin/big'), join(a, 'usr/bin/big-hardlink'));
    await symlink('/usr/bin/suid', join(a, 'usr/bin/abs-link'));
    await symlink('../bin/suid', join(a, 'usr/bin/rel-link'));
    await symlink('/nonexistent', join(a, 'dangling'));
    await writeFile(join(a, 'etc/shadow'), 'secret');
    await chmod(join(a, 'etc/shadow'), 0o640);
    await chown(join(a, 'etc/shadow'), 0, 42);
    await writeFile(join(a, 'etc/old'), 'old');
    await writeFile(join(a, 'etc/keep'), 'keep');
    await writeFile(join(a, 'opt/lower/deep/file'), 'lower');
    await writeFile(join(a, 'home/user/.profile'), 'p');
    await chown(join(a, 'home/user/.profile'), 1000, 1000);
    await chown(join(a, 'home/user'), 1000, 1000);
    await chmod(join(a, 'home/user'), 0o700);
    await chmod(join(a, 'tmp'), 0o1777);
    await writeFile(join(a, 'empty'), '');
    sh('mknod', ['-m', '0666', join(a, 'dev/null'), 'c', '1', '3']);
    sh('mknod', ['-m', '0660', join(a, 'dev/loop0'), 'b', '7', '0']);
    sh('mkfifo', ['-m', '0600', join(a, 'dev/fifo')]);
    await utimes(join(a, 'etc/keep'), 1_500_000_000, 1_500_000_000);

    const b = join(base, 'b');
    await mkdir(b);
    await writeFile(join(b, 'keep'), 'replaced by layer 2');
    await writeFile(join(b, 'added'), 'new in layer 2');
    const c = join(base, 'c');
    await mkdir(join(c, 'only'), { recursive: true });
    await writeFile(join(c, 'only/this'), 'opaque layer');

    const layout = join(base, 'layout');
    const img = `${layout}:latest`;
    sh('umoci', ['init', '--layout', layout]);
    sh('umoci', ['new', '--image', img]);
    sh('umoci', ['insert', '--image', img, a, '/']);
    sh('umoci', ['insert', '--image', img, b, '/etc']);
    sh('umoci', ['insert', '--image', img, '--whiteout', '/etc/old']);
    sh('umoci', ['insert', '--image', img, '--whiteout', '/usr/bin/sgid']);
    sh('umoci', ['insert', '--image', img, '--opaque', c, '/opt']);

    const bundle = join(base, 'bundle');
    sh('umoci', ['unpack', '--image', img, bundle]);

    // berth: apply each layer of the same manifest over one directory.
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
    const mdesc = index.manifests.find((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === 'latest');
    const blob = (d: string) => join(layout, 'blobs', 'sha256', d.slice(7));
    const manifest = JSON.parse(await readFile(blob(mdesc.digest), 'utf8'));
    const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8'));
    expect(manifest.layers.length).toBe(5);
    const mine = join(base, 'mine');
    await mkdir(mine);
    for (const [i, l] of manifest.layers.entries()) {
      const r = await applyLayer(createReadStream(blob(l.digest)), mine, { whiteouts: 'apply', what: `layer ${l.digest}` });
      expect(r.diffId).toBe(config.rootfs.diff_ids[i]);
    }

    const theirs = await listing(join(bundle, 'rootfs'));
    const ours = await listing(mine);
    // umoci decides the root directory's own metadata itself; compare everything below it.
    expect(ours.slice(1)).toEqual(theirs.slice(1));
    expect(ours.length).toBeGreaterThan(25);
    expect(ours.join('\n')).toContain('/usr/bin/capped f 755 0:0 size=3 nlink=1');
    expect(ours.join('\n')).toMatch(/\/usr\/bin\/capped .* cap=/);
    expect(ours.join('\n')).not.toContain('/etc/old');
    expect(ours.join('\n')).not.toContain('/opt/lower');
  });
});
