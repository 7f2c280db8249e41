import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { runBerth, testdir } from '../kit/index.js';

const script = fileURLToPath(new URL('../fixtures/write-images.mjs', import.meta.url));

function run(args: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

describe('several processes writing one store', () => {
  it('loses no tag and leaves a clean store', async () => {
    const root = await testdir();
    const procs = 6;
    const each = 8;
    const codes = await Promise.all(Array.from({ length: procs }, (_, i) => run([root, `p${i}`, String(each)])));
    expect(codes).toEqual(Array(procs).fill(0));
    const store = await ContentStore.open(root);
    const names = (await store.listImages()).map((r) => r.name);
    expect(names).toHaveLength(procs * each);
    for (let i = 0; i < procs; i++) for (let j = 0; j < each; j++) expect(names).toContain(`berth.test/p${i}:${j}`);
    const check = await runBerth(['system', 'check'], { root });
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/no problems/);
  });
});
