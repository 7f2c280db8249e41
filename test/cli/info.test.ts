import { describe, expect, it } from 'vitest';
import { ContentStore } from '../../src/store/store.js';
import { randomImage, runBerth, testdir } from '../kit/index.js';
import pkg from '../../package.json' with { type: 'json' };

describe('info, version, completion', () => {
  it('--version prints the package version without a command', async () => {
    const r = await runBerth(['--version']);
    expect(r.stdout).toBe(`berth version ${pkg.version}\n`);
    const r2 = await runBerth(['--version'], { root: await testdir() });
    expect(r2.stdout).toBe(`berth version ${pkg.version}\n`);
  });

  it('info reports the root, store figures and runc', async () => {
    const root = await testdir();
    await randomImage(await ContentStore.open(root), { layers: 2 });
    const r = await runBerth(['info', '--format', 'json'], { root });
    expect(r.code).toBe(0);
    const i = JSON.parse(r.stdout);
    expect(i.root).toBe(root);
    expect(i.store.images).toBe(1);
    expect(i.store.blobs).toBe(4);
    expect(i.runc.found).toBe(true);
    expect(i.runc.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof i.buildctl.found).toBe('boolean');
    if (i.buildctl.found) expect(i.buildctl.version).toBeTruthy();
  });

  it('version and completion', async () => {
    const v = await runBerth(['version', '--format', 'json'], { root: await testdir() });
    expect(JSON.parse(v.stdout).berth).toBe(pkg.version);
    const c = await runBerth(['completion']);
    expect(c.stdout).toContain('complete -F _berth berth');
    expect(c.stdout).toContain('images');
  });
});
