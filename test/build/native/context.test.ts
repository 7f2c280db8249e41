/**
 * The build context: .dockerignore as docker reads it, and source resolution that cannot leave
 * the context (../, absolute paths and symlinks all stay inside it).
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IgnoreMatcher, loadIgnore } from '../../../src/build/context/ignore.js';
import { findSources, hashSource } from '../../../src/build/context/sources.js';
import { testdir } from '../../kit/testdir.js';

describe('.dockerignore', () => {
  const m = IgnoreMatcher.parse(['# comment', 'logs', '**/*.test.js', '!src/keep/*.test.js', 'build/', '*.env', '/abs', './dot/', 'a?c', '[xy].txt'].join('\n'));
  it.each([
    ['logs', true],
    ['logs/x.log', true],
    ['src/a.test.js', true],
    ['a.test.js', true],
    ['src/keep/important.test.js', false],
    ['build/out/bin', true],
    ['secret.env', true],
    ['src/secret.env', false],
    ['abs/f', true],
    ['dot/f', true],
    ['abc', true],
    ['abbc', false],
    ['x.txt', true],
    ['z.txt', false],
    ['README.md', false],
  ])('%s → ignored %s', (p, want) => {
    expect(m.ignores(p)).toBe(want);
  });

  it('<Dockerfile>.dockerignore wins over the context one', async () => {
    const d = await testdir();
    await writeFile(join(d, '.dockerignore'), 'a\n');
    await mkdir(join(d, 'sub'));
    await writeFile(join(d, 'sub', 'Dockerfile.dockerignore'), 'b\n');
    const mm = await loadIgnore(d, join(d, 'sub', 'Dockerfile'));
    expect([mm.ignores('a'), mm.ignores('b')]).toEqual([false, true]);
    const plain = await loadIgnore(d, join(d, 'Dockerfile'));
    expect([plain.ignores('a'), plain.ignores('b')]).toEqual([true, false]);
  });
});

describe('sources', () => {
  it('never leave the context: ../, absolute paths and symlinks pointing out', async () => {
    const d = await testdir();
    const ctx = join(d, 'ctx');
    await mkdir(join(ctx, 'in'), { recursive: true });
    await writeFile(join(d, 'outside.txt'), 'secret');
    await writeFile(join(ctx, 'in', 'f.txt'), 'x');
    await symlink('../outside.txt', join(ctx, 'up-link'));
    await symlink('/etc/hostname', join(ctx, 'abs-link'));
    await symlink(d, join(ctx, 'dir-link'));
    expect(await findSources(ctx, '../outside.txt')).toEqual([]);
    expect(await findSources(ctx, '/../../etc/hostname')).toEqual([]);
    // Symlinks resolve inside the context: their targets do not exist there.
    expect(await findSources(ctx, 'up-link')).toEqual([]);
    expect(await findSources(ctx, 'abs-link')).toEqual([]);
    expect(await findSources(ctx, 'dir-link/outside.txt')).toEqual([]);
    expect((await findSources(ctx, '../ctx/in/f.txt')).map((m) => m.rel)).toEqual([]);
    expect((await findSources(ctx, 'in/../in/f.txt')).map((m) => m.rel)).toEqual(['in/f.txt']);
  });

  it('wildcards match per segment, sorted, minus ignored paths', async () => {
    const ctx = await testdir();
    await mkdir(join(ctx, 'a', 'b'), { recursive: true });
    for (const f of ['one.txt', 'two.txt', 'x.md', 'a/three.txt', 'a/b/four.txt']) await writeFile(join(ctx, f), f);
    const ig = IgnoreMatcher.parse('two.txt\n');
    expect((await findSources(ctx, '*.txt', ig)).map((m) => m.rel)).toEqual(['one.txt']);
    expect((await findSources(ctx, 'a/*/*.txt')).map((m) => m.rel)).toEqual(['a/b/four.txt']);
    expect((await findSources(ctx, '[ot]*.txt')).map((m) => m.rel)).toEqual(['one.txt', 'two.txt']);
  });

  it('content digests see content and mode, not mtimes, and skip ignored files', async () => {
    const ctx = await testdir();
    await mkdir(join(ctx, 'd'));
    await writeFile(join(ctx, 'd', 'f'), 'one');
    const [m] = await findSources(ctx, 'd');
    const h1 = await hashSource(m!);
    const { utimes, chmod } = await import('node:fs/promises');
    await utimes(join(ctx, 'd', 'f'), new Date(1e9), new Date(1e9));
    expect(await hashSource(m!)).toBe(h1);
    await writeFile(join(ctx, 'd', 'ignored'), 'x');
    expect(await hashSource(m!, IgnoreMatcher.parse('d/ignored'))).toBe(h1);
    await chmod(join(ctx, 'd', 'f'), 0o600);
    expect(await hashSource(m!, IgnoreMatcher.parse('d/ignored'))).not.toBe(h1);
  });
});
