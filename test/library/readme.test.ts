/**
 * The README's library example, run exactly as printed: the first ```js block of its "Library"
 * section is written to a file in a temp directory that holds the archive it names
 * (busybox.tar) and a node_modules/berth-oci link to this package, and run as root with BERTH_ROOT
 * set there.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { busyboxArchive } from './busybox-archive.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('test/library/readme: skipped: the example runs a container, which needs root');

/** The first ```js block under "## Library". */
export function libraryExample(readme: string): string {
  const section = readme.split(/^## /m).find((s) => s.startsWith('Library\n'));
  if (!section) throw new Error('README.md has no "## Library" section');
  const m = /^```js\n([\s\S]*?)^```$/m.exec(section);
  if (!m) throw new Error('the Library section has no ```js block');
  return m[1]!;
}

function node(file: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [file], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => void (stdout += b));
    p.stderr.on('data', (b: Buffer) => void (stderr += b));
    const t = setTimeout(() => p.kill('SIGKILL'), 50_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

let dir = '';
afterAll(async () => {
  if (!dir) return;
  const mounts = await readFile('/proc/mounts', 'utf8');
  if (!mounts.includes(dir)) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!isRoot)('README library example', () => {
  it('runs as printed: loads busybox.tar, runs a command with captured stdout, lists images', async () => {
    const code = libraryExample(await readFile(join(REPO, 'README.md'), 'utf8'));
    expect(code).toContain("from 'berth-oci'");
    expect(code).toContain('busybox.tar');
    dir = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'berth-readme-'));
    await busyboxArchive(join(dir, 'busybox.tar'));
    await mkdir(join(dir, 'node_modules'));
    await symlink(REPO, join(dir, 'node_modules', 'berth-oci'));
    await writeFile(join(dir, 'example.mjs'), code);
    const r = await node('example.mjs', dir, { ...process.env, BERTH_ROOT: join(dir, 'root') });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('loaded docker.io/library/busybox:latest');
    expect(lines[1]).toBe('exit 3 stdout "hello from busybox\\n"');
    expect(lines[2]).toMatch(/^busybox latest [0-9a-f]{12}$/);
    expect(lines).toHaveLength(3);
    // rm: true left no container and no mount behind
    expect(await readFile('/proc/mounts', 'utf8')).not.toContain(dir);
  });
});
