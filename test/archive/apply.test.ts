import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, chown, lstat, mkdir, readFile, readlink, readdir, symlink, link, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { applyLayer, type ApplyOptions } from '../../src/archive/apply.js';
import { native, setNativeForTesting } from '../../src/archive/native.js';
import { isBerthError } from '../../src/errors.js';
import { tarBytes } from '../fixtures/hostile-layers.js';
import { testdir } from '../kit/index.js';

const isRoot = process.getuid?.() === 0;
const apply = (buf: Buffer, dir: string, opts: Partial<ApplyOptions> = {}) => applyLayer(Readable.from([buf]), dir, { whiteouts: 'apply', ...opts });
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

afterEach(() => {
  setNativeForTesting(undefined);
});

describe.skipIf(!isRoot)('applyLayer (as root)', () => {
  /** A tree made with real tools and archived by GNU tar with xattrs, as image builders do. */
  async function gnuTarLayer(): Promise<Buffer> {
    const src = await testdir();
    await writeFile(join(src, 'suid'), '#!/bin/sh\n');
    await chown(join(src, 'suid'), 1000, 1000);
    await chmod(join(src, 'suid'), 0o4755);
    await writeFile(join(src, 'capped'), 'cap');
    await chmod(join(src, 'capped'), 0o755);
    // cap_setuid (bit 7) puts a 0x80 byte in the xattr value: binary PAX must survive.
    execFileSync('setcap', ['cap_setuid,cap_net_bind_service+ep', join(src, 'capped')]);
    await mkdir(join(src, 'dir/sub'), { recursive: true });
    await writeFile(join(src, 'dir/sub/file'), 'hello');
    await chown(join(src, 'dir/sub/file'), 33, 44);
    await chmod(join(src, 'dir/sub/file'), 0o640);
    await link(join(src, 'dir/sub/file'), join(src, 'hard'));
    await symlink('/etc/passwd', join(src, 'abs-link'));
    await symlink('dir/sub/file', join(src, 'rel-link'));
    execFileSync('mkfifo', [join(src, 'fifo')]);
    execFileSync('mknod', ['-m', '0620', join(src, 'tty0'), 'c', '4', '0']);
    execFileSync('mknod', ['-m', '0660', join(src, 'loop9'), 'b', '7', '9']);
    await utimes(join(src, 'dir/sub/file'), 1_000_000_000, 1_000_000_000);
    await utimes(join(src, 'dir/sub'), 1_100_000_000, 1_100_000_000);
    await utimes(join(src, 'dir'), 1_200_000_000, 1_200_000_000);
    execFileSync('touch', ['-h', '-d', '@1300000000', join(src, 'abs-link')]);
    return execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', src, '-cf', '-', '.'], { maxBuffer: 1 << 26 });
  }

  it('applies files, dirs, hard and symbolic links, devices, a fifo, owners, modes, mtimes and capabilities; diff_id is the tar digest', async () => {
    const tarball = await gnuTarLayer();
    const dir = await testdir();
    const r = await apply(tarball, dir);
    expect(r.diffId).toBe(sha(tarball));
    expect(r.size).toBe(tarball.length);
    expect(r.entries).toBeGreaterThanOrEqual(12);

    const suid = await lstat(join(dir, 'suid'));
    expect(suid.mode & 0o7777).toBe(0o4755); // chmod after chown: setuid survives
    expect([suid.uid, suid.gid]).toEqual([1000, 1000]);
    expect(execFileSync('getcap', [join(dir, 'capped')]).toString()).toMatch(/cap_net_bind_service,cap_setuid[+=]ep|cap_setuid,cap_net_bind_service[+=]ep/);
    const f = await lstat(join(dir, 'dir/sub/file'));
    expect([f.uid, f.gid, f.mode & 0o7777, f.mtimeMs / 1000]).toEqual([33, 44, 0o640, 1_000_000_000]);
    expect((await lstat(join(dir, 'hard'))).ino).toBe(f.ino);
    expect(f.nlink).toBe(2);
    expect(await readFile(join(dir, 'hard'), 'utf8')).toBe('hello');
    expect(await readlink(join(dir, 'abs-link'))).toBe('/etc/passwd');
    expect((await lstat(join(dir, 'abs-link'))).mtimeMs / 1000).toBe(1_300_000_000); // lutimes, not the target
    expect(await readlink(join(dir, 'rel-link'))).toBe('dir/sub/file');
    expect((await lstat(join(dir, 'fifo'))).isFIFO()).toBe(true);
    const tty = await lstat(join(dir, 'tty0'));
    expect([tty.isCharacterDevice(), tty.rdev, tty.mode & 0o7777]).toEqual([true, (4 << 8) | 0, 0o620]);
    const loop = await lstat(join(dir, 'loop9'));
    expect([loop.isBlockDevice(), loop.rdev, loop.mode & 0o7777]).toEqual([true, (7 << 8) | 9, 0o660]);
    // Directory times are set after their children were created.
    expect((await lstat(join(dir, 'dir/sub'))).mtimeMs / 1000).toBe(1_100_000_000);
    expect((await lstat(join(dir, 'dir'))).mtimeMs / 1000).toBe(1_200_000_000);
  });

  it('gives the same diff_id for the gzip and zstd forms (sniffed or declared)', async () => {
    const tarball = tarBytes([{ name: 'a', data: 'x'.repeat(100_000) }, { name: 'b/', type: '5' }]);
    const gz = gzipSync(tarball);
    const zst = execFileSync('zstd', ['-q', '-c'], { input: tarball });
    for (const [buf, compression] of [[gz, undefined], [gz, 'gzip'], [zst, undefined], [zst, 'zstd'], [tarball, 'none']] as const) {
      const dir = await testdir();
      const r = await apply(buf, dir, compression ? { compression } : {});
      expect(r.diffId).toBe(sha(tarball));
      expect((await readFile(join(dir, 'a'), 'utf8')).length).toBe(100_000);
    }
  });

  it("'apply' whiteouts delete lower entries, opaque dirs empty lower content, same-layer entries stay", async () => {
    const dir = await testdir();
    await apply(tarBytes([{ name: 'a/x', data: '1' }, { name: 'a/y', data: '2' }, { name: 'b/z', data: '3' }, { name: 'b/sub/deep', data: '4' }, { name: 'keep', data: 'k' }, { name: 'gone/inner', data: 'i' }]), dir);
    await apply(
      tarBytes([
        { name: 'a/.wh.x' },
        { name: 'b', type: '5' },
        { name: 'b/.wh..wh..opq' },
        { name: 'b/new', data: 'n' },
        { name: 'c/new', data: 'same layer' },
        { name: 'c/.wh.new' },
        { name: '.wh.gone' },
        { name: '.wh.never-existed' },
      ]),
      dir,
    );
    expect((await readdir(join(dir, 'a'))).sort()).toEqual(['y']);
    expect((await readdir(join(dir, 'b'))).sort()).toEqual(['new']);
    expect(await readFile(join(dir, 'c/new'), 'utf8')).toBe('same layer');
    expect((await readdir(dir)).sort()).toEqual(['a', 'b', 'c', 'keep']);
  });

  for (const impl of ['addon', 'process'] as const) {
    it(`'overlay' whiteouts are 0/0 character devices and opaque dirs carry trusted.overlay.opaque (${impl})`, async () => {
      if (impl === 'addon' && native().kind !== 'addon') throw new Error('native addon not built: run npm install');
      setNativeForTesting(impl);
      const dir = await testdir();
      await apply(tarBytes([{ name: 'a/.wh.x' }, { name: 'b', type: '5' }, { name: 'b/.wh..wh..opq' }, { name: 'b/new', data: 'n' }, { name: 'c/.wh..wh..opq' }]), dir, { whiteouts: 'overlay' });
      const wh = await lstat(join(dir, 'a/x'));
      expect([wh.isCharacterDevice(), wh.rdev]).toEqual([true, 0]);
      expect(native().lgetxattr(join(dir, 'b'), 'trusted.overlay.opaque')?.toString()).toBe('y');
      expect(native().lgetxattr(join(dir, 'c'), 'trusted.overlay.opaque')?.toString()).toBe('y');
      expect(native().lgetxattr(join(dir, 'a'), 'trusted.overlay.opaque')).toBeNull();
      expect((await readdir(join(dir, 'b'))).sort()).toEqual(['new']);
    });
  }

  it('replaces a lower directory with a file and a file with a directory', async () => {
    const dir = await testdir();
    await apply(tarBytes([{ name: 'x/inner', data: '1' }, { name: 'y', data: 'file' }]), dir);
    await apply(tarBytes([{ name: 'x', data: 'now a file' }, { name: 'y', type: '5' }, { name: 'y/z', data: 'z' }]), dir);
    expect(await readFile(join(dir, 'x'), 'utf8')).toBe('now a file');
    expect(await readFile(join(dir, 'y/z'), 'utf8')).toBe('z');
  });

  it('names the layer and the entry in errors, and stops on a truncated stream', async () => {
    const dir = await testdir();
    const err = await apply(tarBytes([{ name: 'ok', data: '1' }, { name: 'bad', type: 'V' }]), dir, { what: 'layer sha256:abc' }).catch((e: unknown) => e);
    expect(isBerthError(err, 'INVALID_ARGUMENT')).toBe(true);
    expect((err as Error).message).toBe('layer sha256:abc: entry "bad": unsupported entry type "unknown"');
    const t = tarBytes([{ name: 'f', data: 'y'.repeat(5000) }]);
    const err2 = await apply(t.subarray(0, 1500), dir, { what: 'layer L' }).catch((e: unknown) => e);
    expect((err2 as Error).message).toMatch(/^layer L: truncated layer/);
    const err3 = await apply(Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]), dir, { what: 'layer G' }).catch((e: unknown) => e);
    expect(isBerthError(err3, 'INVALID_ARGUMENT')).toBe(true);
    expect((err3 as Error).message).toMatch(/^layer G: /);
  });

  it("accepts a layer that ends right after the last entry's data (unclosed Go tar writers, as umoci writes)", async () => {
    const dir = await testdir();
    const full = tarBytes([{ name: 'a', data: 'first' }, { name: 'f', data: 'abc' }]);
    const cut = full.subarray(0, 512 * 3 + 3);
    const r = await apply(cut, dir);
    expect(r.diffId).toBe(sha(cut));
    expect(await readFile(join(dir, 'f'), 'utf8')).toBe('abc');
    // One byte fewer ends inside the data: that is still a truncated layer.
    const err = await apply(full.subarray(0, 512 * 3 + 2), await testdir(), { what: 'layer T' }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('layer T: truncated layer');
  });

  it('stops when the signal aborts', async () => {
    const dir = await testdir();
    const ac = new AbortController();
    ac.abort();
    const err = await apply(tarBytes([{ name: 'f', data: '1' }]), dir, { signal: ac.signal }).catch((e: unknown) => e);
    expect(isBerthError(err, 'ABORTED')).toBe(true);
  });

  it('reads a layer from a file stream (the store path)', async () => {
    const src = await testdir();
    const p = join(src, 'layer.tar.gz');
    const tarball = tarBytes(Array.from({ length: 50 }, (_, i) => ({ name: `d${i % 5}/f${i}`, data: String(i).repeat(i * 100) })));
    await writeFile(p, gzipSync(tarball));
    const dir = await testdir();
    const events: number[] = [];
    const r = await applyLayer(createReadStream(p), dir, { whiteouts: 'apply', onProgress: (e) => e.type === 'blob-progress' && events.push(e.done) });
    expect(r).toEqual({ diffId: sha(tarball), size: tarball.length, entries: 50 });
    expect(events.length).toBeGreaterThan(0);
  });
});
