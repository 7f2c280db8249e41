import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

const made: string[] = [];
let hooked = false;

/** A fresh temporary directory, removed after the current test. */
export async function testdir(prefix = 'berth-test-'): Promise<string> {
  if (!hooked) {
    hooked = true;
    afterEach(async () => {
      for (const d of made.splice(0)) await rm(d, { recursive: true, force: true }).catch(() => {});
    });
  }
  const d = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), prefix));
  made.push(d);
  return d;
}
