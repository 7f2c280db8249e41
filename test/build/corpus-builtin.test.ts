/**
 * The conformance corpus (../shared/build-corpus, see its README): every case built with the
 * built-in builder and compared with what BuildKit produced. Needs root and real runc.
 *
 * Each case's context is prepared as ./corpus.ts says (write bits back).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNativeBuilder } from '../../src/build/native/index.js';
import { ContentStore } from '../../src/store/store.js';
import { Snapshotter } from '../../src/snapshot/snapshotter.js';
import { testdir } from '../kit/testdir.js';
import { caseConfig, CORPUS, CORPUS_CASES, MODE_LOST, prepareContext, storeCorpusBase } from './corpus.js';

const cases = CORPUS_CASES;
const isRoot = process.getuid?.() === 0;

type Entry = Record<string, unknown>;
interface Summary {
  config: Record<string, unknown>;
  history: { created_by: string; empty_layer?: boolean }[];
  layers: number;
  tree: Record<string, Entry>;
}

let root: string;
let base: Summary;
const table: string[] = [];

function summary(layout: string, ref?: string): Summary {
  const out = execFileSync('python3', [join(CORPUS, 'imgtree.py'), layout, ...(ref ? ['--ref', ref] : [])], { maxBuffer: 64 << 20 });
  return JSON.parse(out.toString()) as Summary;
}

describe.skipIf(!isRoot || cases.length === 0)('corpus: built-in builder vs BuildKit', () => {
  beforeAll(async () => {
    root = await testdir('berth-corpus-');
    const layout = join(root, 'base-layout');
    await storeCorpusBase(await ContentStore.open(join(root, 'store')), layout);
    base = summary(layout);
  }, 120_000);

  afterAll(async () => {
    if (table.length) writeFileSync(join(process.env.BERTH_CORPUS_TABLE ?? join(root ?? '.', 'table.md')), table.join('\n') + '\n');
    // Print nothing: the table goes to BERTH_CORPUS_TABLE when set.
  });

  for (const name of cases) {
    it(name, async () => {
      const dir = join(CORPUS, 'cases', name);
      const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, unknown>;
      const caseJson = caseConfig(name);
      const ctx = prepareContext(name, join(root, 'ctx'));
      const builder = createNativeBuilder({ root: join(root, 'store') });
      const tag = `corpus-${name}`;
      const req = {
        context: ctx,
        tags: [tag],
        buildArgs: caseJson.buildArgs ?? {},
        labels: {},
        secrets: [],
        ssh: [],
        cacheFrom: [],
        cacheTo: [],
        outputs: [],
        ...(caseJson.target ? { target: caseJson.target } : {}),
      };
      if (expected.error) {
        const err = await builder.build(req).then(
          () => undefined,
          (e: Error) => e,
        );
        table.push(`| ${name} | ${err ? 'match (fails: ' + err.message.split('\n')[0]!.slice(0, 90) + ')' : 'DIFFERS: built'} |`);
        expect(err).toBeInstanceOf(Error);
        const store = await ContentStore.open(join(root, 'store'));
        expect((await store.listImages()).map((i) => i.name)).not.toContain(`docker.io/library/${tag}:latest`);
        return;
      }
      try {
        await builder.build(req);
      } catch (e) {
        table.push(`| ${name} | DIFFERS: build failed: ${(e as Error).message.slice(0, 120)} |`);
        throw e;
      }
      const got = summary(join(root, 'store', 'content'), `docker.io/library/${tag}:latest`);
      const onBase = expected.on_base !== false;
      const hist = onBase ? got.history.slice(base.history.length) : got.history;
      const layers = onBase ? got.layers - base.layers : got.layers;
      const changed: Record<string, Entry> = {};
      for (const [p, e] of Object.entries(got.tree)) if (JSON.stringify(base.tree[p]) !== JSON.stringify(e)) changed[p] = e;
      const removed = Object.keys(base.tree).filter((p) => !(p in got.tree)).sort();
      const expChanged = { ...(expected.changed as Record<string, Entry>) };
      for (const p of MODE_LOST[name] ?? []) {
        if (changed[p] && expChanged[p]) changed[p] = { ...changed[p], mode: expChanged[p]!.mode };
      }
      for (const p of ['/dev', '/proc', '/sys']) if (!(p in changed)) delete expChanged[p];
      const expHistory = (expected.history as { created_by: string; empty_layer?: boolean }[]).map((h) => ({ ...h, created_by: h.created_by.replace(/ # buildkit$/, '') }));
      const diffs: string[] = [];
      if (JSON.stringify(sortKeys(got.config)) !== JSON.stringify(sortKeys(expected.config))) diffs.push('config');
      if (JSON.stringify(hist) !== JSON.stringify(expHistory)) diffs.push('history');
      if (layers !== expected.layers) diffs.push(`layers ${layers}≠${String(expected.layers)}`);
      const paths = [...new Set([...Object.keys(changed), ...Object.keys(expChanged)])].filter((p) => JSON.stringify(sortKeys(changed[p])) !== JSON.stringify(sortKeys(expChanged[p])));
      if (paths.length) diffs.push(`changed ${paths.slice(0, 6).map((p) => `${p}${p in changed ? (p in expChanged ? '(differs)' : '(extra)') : '(missing)'}`).join(' ')}`);
      if (JSON.stringify(removed) !== JSON.stringify(expected.removed)) diffs.push('removed');
      table.push(`| ${name} | ${diffs.length ? `DIFFERS: ${diffs.join(', ')}` : 'match'} |`);
      expect(sortKeys(got.config)).toEqual(sortKeys(expected.config));
      expect(hist).toEqual(expHistory);
      expect(sortKeys(changed)).toEqual(sortKeys(expChanged));
      expect(removed).toEqual(expected.removed);
      expect(layers).toBe(expected.layers);
    });
  }

  it('leaves no active snapshot or mount behind', async () => {
    const snaps = await Snapshotter.open(join(root, 'store'));
    const active = (await snaps.list()).filter((s) => s.kind === 'active');
    expect(active).toEqual([]);
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    expect(mounts.includes(join(root, 'store'))).toBe(false);
  });
});

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}
