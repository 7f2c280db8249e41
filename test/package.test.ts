/**
 * The library as a package (issue #9 item 10): `npm pack` (its prepack builds dist/) gives a
 * tarball that installs into an empty folder with `npm install <tgz>` (dependencies from the npm
 * registry), puts the `berth` CLI on PATH, builds the native addon or falls back, and `import`s.
 * Packed from a copy of the sources so the worktree's dist/ is never touched mid-run.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tarOf, testdir } from './kit/index.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..');

describe('npm package', () => {
  it('packs, installs into an empty folder, runs the CLI and a library snippet', async () => {
    const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('berth-oci');
    expect(pkg.bin).toEqual({ berth: 'bin/berth.js' });
    const src = await testdir('berth-pack-');
    for (const f of ['package.json', 'tsconfig.json', 'README.md', 'src', 'bin', 'native/binding.gyp', 'native/berth_native.c']) {
      await mkdir(join(src, f, '..'), { recursive: true });
      await cp(join(REPO, f), join(src, f), { recursive: true });
    }
    await symlink(join(REPO, 'node_modules'), join(src, 'node_modules'));
    const out = await testdir('berth-tgz-');
    const packed = await run('npm', ['pack', '--json', '--pack-destination', out], { cwd: src, timeout: 240_000, maxBuffer: 16 << 20 });
    const info = JSON.parse(packed.stdout)[0] as { filename: string; files: { path: string }[] };
    const files = info.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['bin/berth.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/run/monitor.js', 'native/binding.gyp', 'native/berth_native.c', 'package.json', 'README.md']));
    expect(files.filter((f) => /^(src|test|native\/build|node_modules)\//.test(f))).toEqual([]);

    const app = await testdir('berth-app-');
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    const inst = await run('npm', ['install', '--no-audit', '--no-fund', join(out, info.filename)], { cwd: app, timeout: 300_000, maxBuffer: 16 << 20 });
    const installed = join(app, 'node_modules', 'berth-oci');
    const addon = await stat(join(installed, 'native', 'build', 'Release', 'berth_native.node')).then(() => true, () => false);
    // Built here (the machine has a compiler), or the fallback was announced.
    expect(addon || /native addon not built/.test(inst.stderr)).toBe(true);

    const root = join(app, 'store');
    await writeFile(join(app, 'rootfs.tar'), tarOf({ 'etc/hello': 'hi\n' }));
    const env = { ...process.env, PATH: `${join(app, 'node_modules', '.bin')}:${process.env.PATH}` };
    const v = await run('berth', ['--version'], { cwd: app, env, timeout: 30_000 });
    expect(v.stdout).toBe(`berth version ${pkg.version}\n`);
    const imp = await run('berth', ['--root', root, 'import', 'rootfs.tar', 'pkg:1'], { cwd: app, env, timeout: 60_000 });
    expect(imp.stdout).toMatch(/^sha256:[a-f0-9]{64}\n$/);
    const images = await run('berth', ['--root', root, 'images', '--format', '{{.Repository}}:{{.Tag}}'], { cwd: app, env, timeout: 60_000 });
    expect(images.stdout).toBe('pkg:1\n');

    await writeFile(
      join(app, 'snippet.js'),
      `import { openBerth } from 'berth-oci';
import { ContentStore } from 'berth-oci/store';
const berth = await openBerth({ root: process.argv[2] });
const cfg = await (await berth.image('pkg:1')).config();
const rows = await berth.images();
const store = await ContentStore.open(process.argv[2]);
console.log(JSON.stringify({ diffIds: cfg.rootfs.diff_ids.length, rows: rows.map((r) => r.Repository + ':' + r.Tag), blobs: (await store.listBlobs()).length > 0 }));
await berth.close();
`,
    );
    const snip = await run(process.execPath, ['snippet.js', root], { cwd: app, timeout: 60_000 });
    expect(JSON.parse(snip.stdout)).toEqual({ diffIds: 1, rows: ['pkg:1'], blobs: true });
  }, 600_000);
});
