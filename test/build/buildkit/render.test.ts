import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import type { BuildEvent } from '../../../src/build/builder.js';
import { ProgressReader } from '../../../src/build/buildkit/progress.js';
import { createBuildProgress } from '../../../src/cli/build-progress.js';

const SAMPLES = fileURLToPath(new URL('../../fixtures/buildkit-samples/', import.meta.url));

function render(mode: 'plain' | 'json', file: string): string {
  let out = '';
  const sink = new Writable({
    write(c, _e, cb) {
      out += c.toString();
      cb();
    },
  });
  const p = createBuildProgress(mode, sink as unknown as NodeJS.WritableStream);
  const r = new ProgressReader('rawjson', p.onEvent);
  for (const l of readFileSync(SAMPLES + file, 'utf8').split('\n')) r.line(l);
  r.close();
  p.done();
  return out;
}

it('plain: BuildKit-like numbered steps with their output and final state', () => {
  const out = render('plain', 'v0.32.2-rawjson-run-fails.jsonl');
  const lines = out.split('\n').filter((l) => l !== '');
  const n = (name: string) => lines.find((l) => l.endsWith(` ${name}`))!.split(' ')[0]!;
  const fail = n('[2/4] RUN echo about to fail && exit 3');
  expect(fail).toMatch(/^#\d+$/);
  expect(lines).toContain(`${n('[1/4] RUN echo before > /before')} CACHED`);
  expect(lines.some((l) => new RegExp(`^${fail} \\d+\\.\\d{3} about to fail$`).test(l))).toBe(true);
  expect(lines).toContain(`${fail} ERROR: process "/bin/sh -c echo about to fail && exit 3" did not complete successfully: exit code: 3`);
  // Each step is numbered once and finishes once.
  const heads = lines.filter((l) => /^#\d+ (DONE|CACHED|ERROR)/.test(l)).map((l) => l.split(' ')[0]);
  expect(new Set(heads).size).toBe(heads.length);
});

it('json: one event per line, the documented fields', () => {
  const events = render('json', 'v0.24.0-rawjson-lint-warnings.jsonl').trim().split('\n').map((l) => JSON.parse(l) as BuildEvent & { time: string });
  expect(events.length).toBeGreaterThan(5);
  for (const e of events) {
    expect(Number.isNaN(Date.parse(e.time))).toBe(false);
    if (e.type === 'step-start' || e.type === 'step-done') expect(Object.keys(e.step).sort()).toEqual(expect.arrayContaining(['cached', 'durationMs', 'id', 'name']));
    else if (e.type === 'warning') expect(typeof e.line).toBe('number');
    else if (e.type === 'step-log') expect(['stdout', 'stderr']).toContain(e.stream);
    else expect(e.type).toBe('message');
  }
});
