import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished } from 'vitest';

/** Directories made outside a test (beforeAll): removed when the test file is done. */
const suiteDirs: string[] = [];

// Registered while the importing test file is collected, on that file's root suite (a hook
// registered later, inside a test, is never run).
afterAll(async () => {
  for (const d of suiteDirs.splice(0)) await rm(d, { recursive: true, force: true }).catch(() => {});
});

/**
 * A fresh temporary directory: made in a test, it is removed when that test finishes; made in
 * beforeAll (or anywhere else outside a test), when the test file finishes.
 */
export async function testdir(prefix = 'berth-test-'): Promise<string> {
  const d = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), prefix));
  try {
    onTestFinished(() => rm(d, { recursive: true, force: true }).catch(() => {}));
  } catch {
    suiteDirs.push(d);
  }
  return d;
}
