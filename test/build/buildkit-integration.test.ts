/**
 * The BuildKit backend against a real buildkitd: runs when BERTH_TEST_BUILDKIT_ADDR names one
 * (unix:///run/buildkit/buildkitd.sock, tcp://...), and reports itself skipped otherwise.
 * - every case of ../shared/build-corpus (BERTH_BUILD_CORPUS to move it), compared with its
 *   expected.json as that folder's README says, FROM `base` which exists only in berth's store;
 * - --push to a local docker-registry;
 * - --metadata-file and --iidfile carry the digests `berth images --digests` shows.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBerth } from '../kit/cli.js';
import { startRegistry, type RunningRegistry } from '../kit/registry.js';
import { testdir } from '../kit/testdir.js';

const ADDR = process.env.BERTH_TEST_BUILDKIT_ADDR;
const CORPUS = process.env.BERTH_BUILD_CORPUS ?? fileURLToPath(new URL('../../../shared/build-corpus/', import.meta.url));
const CASES = existsSync(join(CORPUS, 'cases')) ? readdirSync(join(CORPUS, 'cases')).sort() : [];

interface Expected {
  error?: boolean;
  buildkit_errors?: string[];
  config?: Record<string, unknown>;
  history?: { created_by: string; empty_layer?: boolean }[];
  layers?: number;
  on_base?: boolean;
  changed?: Record<string, { t: string }>;
  removed?: string[];
}

interface Summary {
  config: Record<string, unknown>;
  history: { created_by: string; empty_layer?: boolean }[];
  layers: number;
  changed?: Record<string, { t: string }>;
  removed?: string[];
  tree?: Record<string, { t: string }>;
}

const stripMarker = (h: { created_by: string; empty_layer?: boolean }[]) => h.map((x) => ({ ...x, created_by: x.created_by.replace(/ # buildkit$/, '') }));
/** BuildKit's RUN layers may carry the empty mount-point directories; they may be absent here. */
const RUNC_DIRS = new Set(['/dev', '/proc', '/sys']);

describe.skipIf(!ADDR)('berth build against a real BuildKit (BERTH_TEST_BUILDKIT_ADDR)', () => {
  let root: string;
  let work: string;
  let registry: RunningRegistry | undefined;
  const berth = (args: string[], input?: string) =>
    runBerth(['--progress', 'plain', ...args], { root, timeoutMs: 300_000, ...(input !== undefined ? { input } : {}) });

  beforeAll(async () => {
    work = await testdir('berth-bk-int-');
    root = join(work, 'root');
    execFileSync('python3', [join(CORPUS, 'make-base.py'), join(work, 'base')]);
    const l = await runBerth(['load', '--dir', join(work, 'base')], { root });
    expect(l.code).toBe(0);
    await writeFile(join(work, 'base.json'), execFileSync('python3', [join(CORPUS, 'imgtree.py'), join(work, 'base')]));
  });
  afterAll(async () => {
    await registry?.stop();
  });

  for (const name of CASES) {
    it(`corpus: ${name}`, async () => {
      const dir = join(CORPUS, 'cases', name);
      const expected = JSON.parse(await readFile(join(dir, 'expected.json'), 'utf8')) as Expected;
      const cfg = existsSync(join(dir, 'case.json')) ? (JSON.parse(await readFile(join(dir, 'case.json'), 'utf8')) as { buildArgs?: Record<string, string>; target?: string }) : {};
      const tag = `corpus/${name}:test`;
      const args = ['build', '--builder', 'buildkit', '--buildkit-addr', ADDR!, '-t', tag];
      for (const [k, v] of Object.entries(cfg.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
      if (cfg.target) args.push('--target', cfg.target);
      const r = await berth([...args, dir]);
      const images = await berth(['images', '--format', 'json']);
      const tagged = (JSON.parse(images.stdout) as { name: string }[]).some((i) => i.name === `docker.io/${tag}`);
      if (expected.error) {
        expect(r.code, r.stderr).not.toBe(0);
        const lines = r.stderr.split('\n').filter((l) => l.startsWith('berth: '));
        expect(lines).toHaveLength(1);
        const at = expected.buildkit_errors?.find((e) => /^Dockerfile:\d+$/.test(e));
        if (at) expect(lines[0]).toContain(at);
        expect(tagged).toBe(false);
        return;
      }
      expect(r.code, r.stderr).toBe(0);
      expect(tagged).toBe(true);
      const out = join(work, `${name}.tar`);
      expect((await berth(['save', '--format', 'oci', '-o', out, tag])).code).toBe(0);
      const onBase = expected.on_base !== false;
      const got = JSON.parse(execFileSync('python3', [join(CORPUS, 'imgtree.py'), out, ...(onBase ? ['--base', join(work, 'base.json')] : [])], { maxBuffer: 64 << 20 }).toString()) as Summary;
      const changed = onBase ? got.changed! : got.tree!;
      expect(got.config).toEqual(expected.config);
      expect(stripMarker(got.history)).toEqual(stripMarker(expected.history ?? []));
      expect(got.layers).toBe(expected.layers);
      if (onBase) expect(got.removed).toEqual(expected.removed);
      const want = Object.fromEntries(Object.entries(expected.changed ?? {}).filter(([p, e]) => !(RUNC_DIRS.has(p) && e.t === 'd' && !(p in changed))));
      expect(changed).toEqual(want);
    });
  }

  it('--metadata-file and --iidfile carry the digests berth images --digests shows', async () => {
    const dir = join(CORPUS, 'cases', 'run-basic');
    const r = await berth(['build', '--builder', 'buildkit', '--buildkit-addr', ADDR!, '-t', 'meta:1', '--iidfile', join(work, 'iid'), '--metadata-file', join(work, 'meta.json'), dir]);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse((await berth(['images', '--format', 'json'])).stdout) as { name: string; digest: string; id: string }[];
    const row = rows.find((x) => x.name === 'docker.io/library/meta:1')!;
    const meta = JSON.parse(await readFile(join(work, 'meta.json'), 'utf8'));
    expect(meta['containerimage.digest']).toBe(row.digest);
    expect(meta['containerimage.config.digest']).toBe(row.id);
    expect(await readFile(join(work, 'iid'), 'utf8')).toBe(row.id);
    expect(r.stdout.trim()).toBe(row.id);
    expect((await berth(['images', '--digests'])).stdout).toContain(row.digest);
  });

  it('--push to a local docker-registry', async () => {
    registry = await startRegistry();
    const dir = join(CORPUS, 'cases', 'run-basic');
    const ref = `${registry.host}/corpus/pushed:1`;
    const r = await berth(['build', '--builder', 'buildkit', '--buildkit-addr', ADDR!, '-t', ref, '-o', 'type=image,push=true,registry.insecure=true', '--metadata-file', join(work, 'push.json'), dir]);
    expect(r.code, r.stderr).toBe(0);
    const meta = JSON.parse(await readFile(join(work, 'push.json'), 'utf8'));
    const p = await berth(['pull', ref]);
    expect(p.code, p.stderr).toBe(0);
    const rows = JSON.parse((await berth(['images', '--format', 'json'])).stdout) as { name: string; digest: string }[];
    expect(rows.find((x) => x.name === ref)!.digest).toBe(meta['containerimage.digest']);
  });

  it('a daemon address that does not answer fails within seconds with one line', async () => {
    const r = await berth(['build', '--builder', 'buildkit', '--buildkit-addr', 'unix:///nonexistent/buildkitd.sock', join(CORPUS, 'cases', 'run-basic')]);
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(/^berth: the BuildKit daemon at unix:\/\/\/nonexistent\/buildkitd\.sock does not answer/m);
  });
});
