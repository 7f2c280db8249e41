/**
 * The BuildKit backend against a real buildkitd: runs when BERTH_TEST_BUILDKIT_ADDR names one
 * (unix:///run/buildkit/buildkitd.sock, tcp://...), and reports itself skipped otherwise.
 * - every case of ../shared/build-corpus (BERTH_BUILD_CORPUS to move it), compared with its
 *   expected.json as that folder's README says, FROM `base` which exists only in berth's store;
 * - --push to a local docker-registry;
 * - --metadata-file and --iidfile carry the digests `berth images --digests` shows.
 */
import { execFileSync } from 'node:child_process';

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBerth } from '../kit/cli.js';
import { startRegistry, type RunningRegistry } from '../kit/registry.js';
import { testdir } from '../kit/testdir.js';
import { caseConfig, CORPUS, CORPUS_CASES, MODE_LOST, prepareContext } from './corpus.js';

const ADDR = process.env.BERTH_TEST_BUILDKIT_ADDR;
const CASES = CORPUS_CASES;

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

/**
 * Where BuildKit before v0.12 writes a different result than the v0.32.2 the corpus was recorded
 * with (the frontend's history text and heredoc file modes changed since): compared only against
 * a newer daemon. Everything else (config, layers, every other path) is compared on every version.
 *  - history: v0.11 writes `ARG NAME` without the value taken, no `--chown/--chmod` in COPY/ADD,
 *    EXPOSE as a Go map (`map[8443/tcp:{}]`) and HEALTHCHECK as `&{[...] "30s" ...}`;
 *  - modes: v0.11 creates heredoc files 0664 (0644 since).
 */
const OLD_BUILDKIT_DIFFERS: Record<string, { history?: boolean; modes?: string[] }> = {
  'arg-scope': { history: true },
  'copy-chown-chmod': { history: true },
  'env-in-instructions': { history: true },
  'healthcheck-none': { history: true },
  metadata: { history: true },
  heredocs: { modes: ['/etc/app.conf', '/literal.txt'] },
};
let daemonOld = false;

describe.skipIf(!ADDR)('berth build against a real BuildKit (BERTH_TEST_BUILDKIT_ADDR)', () => {
  let root: string;
  let work: string;
  let registry: RunningRegistry | undefined;
  const berth = (args: string[], input?: string) =>
    runBerth(['--progress', 'plain', ...args], { root, timeoutMs: 300_000, ...(input !== undefined ? { input } : {}) });

  beforeAll(async () => {
    work = await testdir('berth-bk-int-');
    root = join(work, 'root');
    // The daemon's version (`buildctl debug info`: "BuildKit: github.com/moby/buildkit v0.11.6 ...").
    const info = execFileSync(process.env.BERTH_BUILDCTL ?? 'buildctl', ['--addr', ADDR!, 'debug', 'info']).toString();
    const v = /\bv(\d+)\.(\d+)\./.exec(info);
    daemonOld = !!v && Number(v[1]) === 0 && Number(v[2]) < 12;
    execFileSync('python3', [join(CORPUS, 'make-base.py'), join(work, 'base')]);
    const l = await runBerth(['load', '--dir', join(work, 'base')], { root });
    expect(l.code).toBe(0);
    await writeFile(join(work, 'base.json'), execFileSync('python3', [join(CORPUS, 'imgtree.py'), join(work, 'base')]));
  });
  afterAll(async () => {
    await registry?.stop();
  });

  /** `berth images` rows (docker's JSON lines, full IDs) as name (familiar), digest, id. */
  async function imageRows(): Promise<{ name: string; digest: string; id: string }[]> {
    const out = (await berth(['images', '--no-trunc', '--format', 'json'])).stdout.trim();
    return out
      ? out.split('\n').map((l) => {
          const r = JSON.parse(l) as { Repository: string; Tag: string; Digest: string; ID: string };
          return { name: `${r.Repository}:${r.Tag}`, digest: r.Digest, id: r.ID };
        })
      : [];
  }

  for (const name of CASES) {
    it(`corpus: ${name}`, async () => {
      const dir = join(CORPUS, 'cases', name);
      const expected = JSON.parse(await readFile(join(dir, 'expected.json'), 'utf8')) as Expected;
      const cfg = caseConfig(name);
      const ctx = prepareContext(name, join(work, 'ctx'));
      const tag = `corpus/${name}:test`;
      const args = ['build', '--builder', 'buildkit', '--buildkit-addr', ADDR!, '-t', tag];
      for (const [k, v] of Object.entries(cfg.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
      if (cfg.target) args.push('--target', cfg.target);
      const r = await berth([...args, ctx]);
      const tagged = (await imageRows()).some((i) => i.name === tag);
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
      // `changed` and `removed` are against the base in every case (on_base: false only means
      // the result does not start from base: its history and layers are all the build's).
      const got = JSON.parse(execFileSync('python3', [join(CORPUS, 'imgtree.py'), out, '--base', join(work, 'base.json')], { maxBuffer: 64 << 20 }).toString()) as Summary;
      const changed = got.changed!;
      // With --base, imgtree takes the base's history and layers off the front: a result not on
      // base keeps all of its own.
      const own = expected.on_base === false ? (JSON.parse(execFileSync('python3', [join(CORPUS, 'imgtree.py'), out], { maxBuffer: 64 << 20 }).toString()) as Summary) : got;
      for (const p of MODE_LOST[name] ?? []) if (changed[p] && expected.changed?.[p]) changed[p] = { ...changed[p], mode: (expected.changed[p] as { mode?: string }).mode } as typeof changed[string];
      const old = OLD_BUILDKIT_DIFFERS[name];
      expect(got.config).toEqual(expected.config);
      if (!(daemonOld && old?.history)) expect(stripMarker(own.history)).toEqual(stripMarker(expected.history ?? []));
      expect(own.layers).toBe(expected.layers);
      expect(got.removed).toEqual(expected.removed);
      const want = Object.fromEntries(Object.entries(expected.changed ?? {}).filter(([p, e]) => !(RUNC_DIRS.has(p) && e.t === 'd' && !(p in changed))));
      if (daemonOld) for (const p of old?.modes ?? []) if (changed[p] && want[p]) changed[p] = { ...changed[p], mode: (want[p] as { mode?: string }).mode } as typeof changed[string];
      expect(changed).toEqual(want);
    });
  }

  it('--metadata-file and --iidfile carry the digests berth images --digests shows', async () => {
    const dir = join(CORPUS, 'cases', 'run-basic');
    const r = await berth(['build', '--builder', 'buildkit', '--buildkit-addr', ADDR!, '-t', 'meta:1', '--iidfile', join(work, 'iid'), '--metadata-file', join(work, 'meta.json'), dir]);
    expect(r.code, r.stderr).toBe(0);
    const row = (await imageRows()).find((x) => x.name === 'meta:1')!;
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
    expect((await imageRows()).find((x) => x.name === ref)!.digest).toBe(meta['containerimage.digest']);
  });

  it('a daemon address that does not answer fails within seconds with one line', async () => {
    const r = await berth(['build', '--builder', 'buildkit', '--buildkit-addr', 'unix:///nonexistent/buildkitd.sock', join(CORPUS, 'cases', 'run-basic')]);
    expect(r.code).toBe(8);
    expect(r.stderr).toMatch(/^berth: the BuildKit daemon at unix:\/\/\/nonexistent\/buildkitd\.sock does not answer/m);
  });
});
