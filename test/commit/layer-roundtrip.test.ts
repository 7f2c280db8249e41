/**
 * The layer writer's round trip, on the real snapshotter (both drivers): an image is unpacked,
 * a mounted active snapshot is changed in every way a layer can carry (new files, modes with
 * setuid/setgid/sticky, owners, a hard link to a setuid file, a file capability, user xattrs,
 * devices, fifos, symlinks, deletions, a directory emptied and refilled, a file turned into a
 * directory, a directory renamed, many files of many sizes), then diff -> putLayer -> commitImage -> unpack into a fresh
 * snapshotter gives the identical tree, and so does umoci unpacking the committed image.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, link, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { native } from '../../src/archive/native.js';
import { readTarEntries } from '../../src/archive/tar.js';
import { MediaType } from '../../src/oci/mediatype.js';
import { hostPlatform } from '../../src/oci/platform.js';
import { LocalSnapshotter, unpack, type SnapshotDriver } from '../../src/snapshot/index.js';
import { commitImage, putLayer } from '../../src/store/commit.js';
import { viewImage } from '../../src/store/images.js';
import { ContentStore } from '../../src/store/store.js';
import { tarBytes, testdir, treeListing } from '../kit/index.js';

const isRoot = process.getuid?.() === 0;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

const BASE = tarBytes([
  { name: 'usr/', type: '5' },
  { name: 'usr/bin/', type: '5' },
  { name: 'usr/bin/suid', data: '#!/bin/sh\necho hi\n', mode: 0o4755 },
  { name: 'usr/bin/sgid', data: 'g', mode: 0o2711, gid: 42 },
  { name: 'etc/', type: '5' },
  { name: 'etc/old', data: 'old' },
  { name: 'etc/keep', data: 'keep' },
  { name: 'etc/f', data: 'a file, later a directory' },
  { name: 'opt/', type: '5' },
  { name: 'opt/lower/', type: '5' },
  { name: 'opt/lower/deep/', type: '5' },
  { name: 'opt/lower/deep/file', data: 'lower' },
  { name: 'opt/lower/other', data: 'other' },
  { name: 'srv/', type: '5' },
  { name: 'srv/a/', type: '5' },
  { name: 'srv/a/x', data: 'x' },
  { name: 'dev/', type: '5' },
  { name: 'dev/null', type: '3', devmajor: 1, devminor: 3, mode: 0o666 },
  { name: 'link', type: '2', linkname: 'usr/bin/suid' },
]);

/** Change the mounted tree in every way a layer can carry. */
async function mutate(m: string): Promise<void> {
  await mkdir(join(m, 'new/sub'), { recursive: true });
  await writeFile(join(m, 'new/file'), 'new file');
  await chown(join(m, 'new/file'), 1000, 1000);
  await chmod(join(m, 'new/file'), 0o640);
  await writeFile(join(m, 'new/big'), randomBytes(1_500_000));
  // More files than the writer reads ahead, small and empty ones among files just over and
  // under its small-file size, so file data crosses its chunk boundaries in every way.
  await mkdir(join(m, 'new/many'));
  for (let i = 0; i < 150; i++) await writeFile(join(m, `new/many/f${i}`), i % 50 === 7 ? randomBytes(256 * 1024 + (i % 3) - 1) : randomBytes((i * 7919) % 5000));
  await link(join(m, 'usr/bin/suid'), join(m, 'new/suid-link'));
  await writeFile(join(m, 'new/capped'), 'cap');
  await chmod(join(m, 'new/capped'), 0o755);
  sh('setcap', ['cap_net_raw,cap_setuid+ep', join(m, 'new/capped')]);
  native().lsetxattr(join(m, 'new/sub'), 'user.berth', Buffer.from([0, 1, 2, 255]));
  sh('mknod', ['-m', '0620', join(m, 'new/tty'), 'c', '4', '1']);
  sh('mknod', ['-m', '0660', join(m, 'new/loop'), 'b', '7', '0']);
  sh('mkfifo', ['-m', '0600', join(m, 'new/fifo')]);
  await symlink('../usr/bin/suid', join(m, 'new/rel-link'));
  await mkdir(join(m, 'new/tmp'));
  await chmod(join(m, 'new/tmp'), 0o1777);
  await mkdir(join(m, 'new/shared'));
  await chmod(join(m, 'new/shared'), 0o2775);
  await writeFile(join(m, 'new/' + 'long-name-'.repeat(12)), 'long');
  await rm(join(m, 'etc/old'));
  await rm(join(m, 'usr/bin/sgid'));
  await chmod(join(m, 'etc/keep'), 0o600);
  await chown(join(m, 'etc/keep'), 5, 5);
  await rm(join(m, 'etc/f'));
  await mkdir(join(m, 'etc/f'));
  await writeFile(join(m, 'etc/f/inside'), 'now a directory');
  await rm(join(m, 'opt/lower'), { recursive: true });
  await mkdir(join(m, 'opt/lower'));
  await writeFile(join(m, 'opt/lower/fresh'), 'refilled');
  sh('mv', [join(m, 'srv/a'), join(m, 'srv/b')]);
  await rm(join(m, 'link'));
  await symlink('/etc/keep', join(m, 'link'));
}

async function sha(s: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
}

for (const driver of ['overlay', 'copy'] as SnapshotDriver[]) {
  describe.skipIf(!isRoot)(`layer round trip (${driver})`, () => {
    it('diff -> putLayer -> unpack gives the identical tree; umoci agrees; the same tree and epoch give the same bytes', async () => {
      const root = await testdir();
      const store = await ContentStore.open(root);
      const snap = await LocalSnapshotter.open(root, { driver });
      const platform = hostPlatform();
      const baseLayer = await putLayer(store, Readable.from([BASE]), { compression: 'gzip' });
      const base = await commitImage(store, {
        config: { architecture: platform.architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [baseLayer.diffId] } },
        layers: [baseLayer.descriptor],
        name: 'berth.test/base:1',
      });
      const { chainId } = await unpack(snap, store, await viewImage(store, base.manifest));
      await snap.prepare('work', chainId);
      expect(await snap.stat('work')).toMatchObject({ kind: 'active', key: 'work', parent: chainId, driver });
      expect(await snap.stat(chainId)).toMatchObject({ kind: 'committed', key: chainId });
      await expect(snap.stat('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(snap.diff('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      const mnt = join(root, 'mnt');
      await mkdir(mnt);
      let expected: string[];
      await snap.mount('work', mnt);
      try {
        await mutate(mnt);
        expected = await treeListing(mnt);
      } finally {
        await snap.unmount(mnt);
      }
      expect(expected.join('\n')).toContain('/new/suid-link f 4755 0:0');
      expect(expected.join('\n')).toMatch(/\/new\/capped f 755 0:0 .* security\.capability=/);

      // Same tree, same epoch: the same bytes; mtimes clamped to the epoch.
      const epoch = 1_000_000_000;
      expect(await sha(await snap.diff('work', { epoch }))).toBe(await sha(await snap.diff('work', { epoch })));
      const names: string[] = [];
      await readTarEntries(await snap.diff('work', { epoch }), async (h) => void names.push(h.name));
      expect(names).toContain('etc/.wh.old');
      expect(names).toContain('usr/bin/.wh.sgid');
      expect(names).toContain('srv/.wh.a');
      if (driver === 'overlay') expect(names).toContain('opt/lower/.wh..wh..opq');
      expect(names.filter((n) => n.startsWith('new/')).length).toBeGreaterThan(10);
      expect(names).not.toContain('etc/keep/'); // sanity: names are paths, dirs end with /
      const parents = names.map((n, i) => ({ n, i })).filter(({ n }) => n.includes('/') && !n.endsWith('/'));
      for (const { n, i } of parents) {
        const dir = n.slice(0, n.lastIndexOf('/') + 1);
        const at = names.indexOf(dir);
        if (at !== -1) expect(at).toBeLessThan(i); // parents before children
      }

      const layer = await putLayer(store, await snap.diff('work'), { compression: 'gzip' });
      expect(layer.descriptor.mediaType).toBe(MediaType.OCI_LAYER_GZIP);
      const img = await commitImage(store, {
        config: { architecture: platform.architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [baseLayer.diffId, layer.diffId] } },
        layers: [baseLayer.descriptor, layer.descriptor],
        name: 'berth.test/roundtrip:1',
      });

      // A fresh snapshotter unpacks the committed image: the identical tree.
      const root2 = await testdir();
      const snap2 = await LocalSnapshotter.open(root2, { driver });
      const top = await unpack(snap2, store, await viewImage(store, img.manifest));
      await snap2.view('check', top.chainId);
      expect((await snap2.stat('check')).kind).toBe('view');
      const mnt2 = join(root2, 'mnt');
      await mkdir(mnt2);
      await snap2.mount('check', mnt2);
      let got: string[];
      try {
        got = await treeListing(mnt2);
      } finally {
        await snap2.unmount(mnt2);
      }
      expect(got.slice(1)).toEqual(expected.slice(1));

      // umoci unpacks the same image from the store's layout: the same tree.
      const bundle = join(root2, 'bundle');
      sh('umoci', ['unpack', '--image', `${store.contentDir}:${img.names[0]}`, bundle]);
      const theirs = await treeListing(join(bundle, 'rootfs'));
      expect(theirs.slice(1)).toEqual(expected.slice(1));
    });
  });
}
