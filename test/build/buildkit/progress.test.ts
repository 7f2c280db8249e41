import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { BuildEvent } from '../../../src/build/builder.js';
import { ProgressReader } from '../../../src/build/buildkit/progress.js';

const SAMPLES = fileURLToPath(new URL('../../fixtures/buildkit-samples/', import.meta.url));
const sample = (n: string) => readFileSync(SAMPLES + n, 'utf8').split('\n');

function replay(file: string): { reader: ProgressReader; events: BuildEvent[] } {
  const events: BuildEvent[] = [];
  const reader = new ProgressReader(file.includes('rawjson') ? 'rawjson' : 'plain', (e) => events.push(e));
  for (const l of sample(file)) reader.line(l);
  reader.close();
  return { reader, events };
}

describe('rawjson progress (BuildKit v0.32.2 / v0.24.0 recordings)', () => {
  it('a cold build: every step starts once and is done once, in its final state', () => {
    const { reader, events } = replay('v0.32.2-rawjson-nocache.jsonl');
    const starts = events.filter((e) => e.type === 'step-start');
    const dones = events.filter((e) => e.type === 'step-done') as Extract<BuildEvent, { type: 'step-done' }>[];
    expect(new Set(starts.map((e) => (e as { step: { id: string } }).step.id)).size).toBe(starts.length);
    expect(dones.length).toBe(starts.length);
    const names = reader.steps().map((s) => s.name);
    expect(names).toContain('[1/3] RUN echo hello > /greeting && mkdir -p /opt/app && echo 1 > /opt/app/version');
    expect(names).toContain('exporting to oci image format');
    const load = dones.find((d) => d.step.name === '[context base] OCI load from client')!;
    expect(load.step.cached).toBe(true);
    const run = dones.find((d) => d.step.name.startsWith('[1/3] RUN'))!;
    expect(run.step.cached).toBe(false);
    expect(run.step.durationMs).toBeGreaterThan(0);
    const s13 = starts.find((e) => e.type === 'step-start' && e.step.name.startsWith('[1/3]'));
    expect(s13 && s13.type === 'step-start' ? s13.total : undefined).toBe(3);
    expect(reader.trailer).toEqual([]);
  });

  it('a cached rebuild reports the RUN steps cached', () => {
    const { reader } = replay('v0.32.2-rawjson-cached.jsonl');
    const runs = reader.steps().filter((s) => / RUN /.test(s.name));
    expect(runs.length).toBeGreaterThan(0);
    expect(runs.every((s) => s.cached)).toBe(true);
  });

  it('a failing RUN: one PROCESS error naming the Dockerfile line and instruction, with the output', () => {
    const { reader, events } = replay('v0.32.2-rawjson-run-fails.jsonl');
    const logs = events.filter((e) => e.type === 'step-log').map((e) => (e as { data: string }).data);
    expect(logs).toEqual(['about to fail\n']);
    const err = reader.failure({ exitCode: 1 });
    expect(err.code).toBe('PROCESS');
    expect(err.message).toBe('build failed at Dockerfile:3 (RUN echo about to fail && exit 3): exit code 3');
    expect(err.detail).toEqual(['about to fail']);
  });

  it('a parse error names its line (INVALID_ARGUMENT)', () => {
    const err = replay('v0.32.2-rawjson-parse-error.jsonl').reader.failure({ exitCode: 1 });
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe('Dockerfile parse error at Dockerfile:3: unknown instruction: FROMM (did you mean FROM?)');
  });

  it('lint warnings become warning events with their lines', () => {
    const { events } = replay('v0.24.0-rawjson-lint-warnings.jsonl');
    const w = events.filter((e) => e.type === 'warning') as Extract<BuildEvent, { type: 'warning' }>[];
    expect(w.map((x) => x.line)).toEqual([1, 1, 3]);
    expect(w[0]!.text).toMatch(/^StageNameCasing: Stage name 'Base' should be lowercase/);
  });
});

describe('plain progress (buildctl older than v0.13)', () => {
  for (const v of ['v0.11.6', 'v0.24.0', 'v0.32.2']) {
    it(`${v}: a failing RUN, a parse error`, () => {
      const run = replay(`${v}-plain-run-fails.txt`).reader.failure({ exitCode: 1 });
      expect(run.code).toBe('PROCESS');
      expect(run.message).toMatch(/^build failed at Dockerfile:[23] \(RUN echo .*\): exit code 3$/);
      expect(run.detail.length).toBeGreaterThan(0);
      const parse = replay(`${v}-plain-parse-error.txt`).reader.failure({ exitCode: 1 });
      expect(parse.code).toBe('INVALID_ARGUMENT');
      expect(parse.message).toMatch(/^Dockerfile parse error at Dockerfile:\d: unknown instruction: /);
    });
  }

  it('v0.11.6: output printed as #0 belongs to the running step', () => {
    const { reader } = replay('v0.11.6-plain-run-fails.txt');
    expect(reader.failedStep()!.tail).toEqual(['to-stdout', 'to-stderr']);
  });

  it('a cold build: steps done, a cached one CACHED', () => {
    const { reader } = replay('v0.11.6-plain-cached.txt');
    const run = reader.steps().find((s) => s.name.startsWith('[2/2] RUN'))!;
    expect(run.cached).toBe(true);
    const cold = replay('v0.11.6-plain-cold.txt').reader.steps().find((s) => s.name.startsWith('[2/2] RUN'))!;
    expect(cold.cached).toBe(false);
    expect(cold.durationMs).toBe(100);
  });

  it('a missing base image or COPY source: NOT_FOUND naming the line', () => {
    for (const f of ['v0.11.6-plain-missing-image.txt', 'v0.24.0-plain-missing-image.txt']) {
      const e = replay(f).reader.failure({ exitCode: 1 });
      expect(e.code).toBe('NOT_FOUND');
      expect(e.message).toMatch(/^build failed at Dockerfile:1 \(FROM 127\.0\.0\.1:5000\/test\/nonexistent:1\): .*not found$/);
    }
    const c = replay('v0.32.2-plain-copy-missing.txt').reader.failure({ exitCode: 1 });
    expect(c.code).toBe('NOT_FOUND');
    expect(c.message).toBe('build failed at Dockerfile:2 (COPY does-not-exist.txt /x): "/does-not-exist.txt": not found');
  });

  it('lint warnings', () => {
    const w = replay('v0.24.0-plain-lint-warnings.txt').events.filter((e) => e.type === 'warning') as Extract<BuildEvent, { type: 'warning' }>[];
    expect(w.map((x) => x.line)).toEqual([1, 1, 3]);
  });
});

it('an unreachable daemon is UNAVAILABLE and says so', () => {
  const r = new ProgressReader('rawjson');
  for (const l of sample('v0.32.2-daemon-unreachable.txt')) r.line(l);
  r.close();
  const e = r.failure({ exitCode: 1, addr: 'unix:///run/buildkit/buildkitd.sock' });
  expect(e.code).toBe('UNAVAILABLE');
  expect(e.message).toBe('the BuildKit daemon at unix:///run/buildkit/buildkitd.sock does not answer (dial unix /run/buildkit/buildkitd.sock: connect: no such file or directory)');
});
