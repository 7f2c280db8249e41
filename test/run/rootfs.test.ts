import { lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureMountpoint, readInRoot, secureJoin } from '../../src/run/rootfs.js';
import { testdir } from '../kit/index.js';

describe('rootfs path safety', () => {
  it('resolves symlinks inside the root only', async () => {
    const d = await testdir();
    const root = join(d, 'root');
    await mkdir(join(root, 'etc'), { recursive: true });
    await writeFile(join(d, 'secret'), 'host secret');
    await symlink('/../../../secret', join(root, 'etc', 'abs'));
    await symlink('../../../../secret', join(root, 'etc', 'rel'));
    await symlink('/etc', join(root, 'loop'));
    expect(await secureJoin(root, '/etc/abs')).toBe(join(root, 'secret'));
    expect(await secureJoin(root, '/etc/rel')).toBe(join(root, 'secret'));
    expect(await secureJoin(root, '/loop/rel')).toBe(join(root, 'secret'));
    expect(await secureJoin(root, '../../x')).toBe(join(root, 'x'));
    expect(await readInRoot(root, '/etc/abs')).toBeUndefined();
    await writeFile(join(root, 'secret'), 'inside');
    expect(await readInRoot(root, '/etc/rel')).toBe('inside');
  });

  it('replaces symlinks at runtime mount points without touching their targets', async () => {
    const d = await testdir();
    const root = join(d, 'root');
    const outside = join(d, 'outside');
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(d, 'canary'), 'x');
    await symlink(join(d, 'canary'), join(root, 'etc', 'hosts'));
    await symlink(outside, join(root, 'dev'));
    await ensureMountpoint(root, '/etc/hosts', 'file');
    await ensureMountpoint(root, '/dev/pts', 'dir');
    expect((await lstat(join(root, 'etc', 'hosts'))).isFile()).toBe(true);
    expect((await lstat(join(root, 'dev'))).isDirectory()).toBe(true);
    expect((await lstat(join(root, 'dev', 'pts'))).isDirectory()).toBe(true);
    expect(await readFile(join(d, 'canary'), 'utf8')).toBe('x');
    await expect(lstat(join(outside, 'pts'))).rejects.toThrow();
    await expect(readlink(join(root, 'dev'))).rejects.toThrow();
  });
});
