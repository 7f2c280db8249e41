import { lstat, mkdir, readdir, readFile, writeFile, utimes, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { applyLayer } from '../../src/archive/apply.js';
import { isBerthError } from '../../src/errors.js';
import { HOSTILE_CASES } from '../fixtures/hostile-layers.js';
import { testdir } from '../kit/index.js';

const isRoot = process.getuid?.() === 0;

async function canaryState(dir: string): Promise<string> {
  const parts: string[] = [];
  const d = await lstat(dir);
  parts.push(`dir ${d.mode.toString(8)} ${d.uid}:${d.gid} ${d.mtimeMs}`);
  for (const n of (await readdir(dir)).sort()) {
    const st = await lstat(join(dir, n));
    parts.push(`${n} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${st.nlink} ${st.isFile() ? await readFile(join(dir, n), 'utf8') : ''}`);
  }
  return parts.join('\n');
}

describe.skipIf(!isRoot)('hostile layers: the canary outside the root stays untouched', () => {
  for (const mode of ['apply', 'overlay'] as const) {
    for (const c of HOSTILE_CASES) {
      it(`${c.name} (${mode})`, async () => {
        const base = await testdir();
        const canaryDir = join(base, 'canary');
        const root = join(base, 'root');
        await mkdir(canaryDir, { mode: 0o755 });
        await mkdir(root);
        await writeFile(join(canaryDir, 'canary'), 'original');
        await chmod(join(canaryDir, 'canary'), 0o600);
        await utimes(join(canaryDir, 'canary'), 1_000_000, 1_000_000);
        await utimes(canaryDir, 1_000_000, 1_000_000);
        const before = await canaryState(canaryDir);
        const baseBefore = (await readdir(base)).sort();

        let err: unknown;
        try {
          await applyLayer(Readable.from([c.layer(canaryDir)]), root, { whiteouts: mode, what: 'layer L', ...(c.limits ? { limits: c.limits } : {}) });
        } catch (e) {
          err = e;
        }
        if (c.expect === 'reject' || (c.expect === 'either' && err)) {
          expect(isBerthError(err, 'INVALID_ARGUMENT'), String(err)).toBe(true);
          expect((err as Error).message).toMatch(/^layer L: /);
          expect((err as Error).message).not.toContain('\n');
        } else if (c.expect === 'apply') {
          expect(err).toBeUndefined();
        }
        expect(await canaryState(canaryDir)).toBe(before);
        expect((await readdir(base)).sort()).toEqual(baseBefore);
      });
    }
  }
});
