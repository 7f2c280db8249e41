import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTarEntries, readTarFileEntries } from '../../src/archive/tar.js';
import { isBerthError } from '../../src/errors.js';
import { testdir } from '../kit/index.js';

type Seen = { name: string; type: string; size: number; linkname?: string; sha?: string };

/** Every member; bodies of members at odd positions are left unread (the reader skips them). */
async function list(read: (cb: (h: Seen, body: AsyncIterable<Buffer>) => Promise<void>) => Promise<void>): Promise<Seen[]> {
  const out: Seen[] = [];
  await read(async (h, body) => {
    const s: Seen = { name: h.name, type: h.type, size: h.size, ...(h.linkname ? { linkname: h.linkname } : {}) };
    if (out.length % 2 === 0) {
      const hash = createHash('sha256');
      for await (const c of body) hash.update(c);
      s.sha = hash.digest('hex');
    }
    out.push(s);
  });
  return out;
}

describe('readTarFileEntries (reused buffers)', () => {
  it('reads what tar-stream reads from GNU, pax and ustar archives made by tar, big members and skipped bodies included', async () => {
    const d = await testdir();
    const src = join(d, 'src');
    const deep = join(src, 'a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60));
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, 'long-name-file-' + 'x'.repeat(80)), randomBytes(3_000_001));
    await writeFile(join(src, 'small'), 'hello');
    await writeFile(join(src, 'big'), randomBytes(5 * 1024 * 1024 + 17));
    await writeFile(join(src, 'empty'), '');
    await writeFile(join(src, 'mid'), randomBytes(2 * 1024 * 1024 - 100));
    await symlink('small', join(src, 'link'));
    await symlink('t'.repeat(150), join(src, 'longlink'));
    for (const format of ['gnu', 'pax', 'ustar']) {
      const tar = join(d, `${format}.tar`);
      // ustar cannot hold the long names: that archive has the short members only
      const members = format === 'ustar' ? ['small', 'big', 'empty', 'mid', 'link'] : ['.'];
      execFileSync('tar', ['-C', src, `--format=${format}`, '-cf', tar, ...members]);
      const viaStream = await list((cb) => readTarEntries(createReadStream(tar), cb));
      const viaFile = await list((cb) => readTarFileEntries(tar, cb));
      expect(viaFile).toEqual(viaStream);
      expect(viaFile.length).toBeGreaterThanOrEqual(5);
      if (format !== 'ustar') expect(viaFile.some((m) => m.name.endsWith('x'.repeat(80)) && m.size === 3_000_001)).toBe(true);
    }
  });

  it('fails a truncated archive and a corrupt header with one clear line', async () => {
    const d = await testdir();
    await writeFile(join(d, 'f'), randomBytes(3 * 1024 * 1024));
    const tar = join(d, 'x.tar');
    execFileSync('tar', ['-C', d, '-cf', tar, 'f']);
    await truncate(tar, 2 * 1024 * 1024);
    const e1 = await readTarFileEntries(tar, async () => {}, { what: 'x.tar' }).catch((e: unknown) => e);
    expect(isBerthError(e1, 'INVALID_ARGUMENT')).toBe(true);
    expect((e1 as Error).message).toBe('x.tar: archive is truncated');
    await writeFile(tar, randomBytes(4096));
    const e2 = await readTarFileEntries(tar, async () => {}, { what: 'x.tar' }).catch((e: unknown) => e);
    expect((e2 as Error).message).toBe('x.tar: not a tar archive (or a corrupt one)');
  });
});
