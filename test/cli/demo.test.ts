import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testdir } from '../kit/index.js';

const demo = fileURLToPath(new URL('../../scripts/demo.sh', import.meta.url));

describe('the README main job (scripts/demo.sh)', () => {
  it('imports, lists, inspects, saves, loads, runs and checks', async () => {
    const root = await testdir();
    const r = spawnSync('bash', [demo], { env: { ...process.env, BERTH_ROOT: root }, encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).not.toMatch(/berth: (?!warning)/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^demo\/busybox\s+latest\s+[0-9a-f]{12}/m);
    expect(r.stdout).toContain('Loaded image: demo/busybox:latest');
    expect(r.stdout).toMatch(/no problems/);
    if (process.getuid?.() === 0) expect(r.stdout).toContain('hello from Linux in a container');
  });
});
