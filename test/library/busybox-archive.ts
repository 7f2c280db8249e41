/**
 * A `docker save` archive of the busybox fixture image (test/fixtures/busybox-image.ts), written
 * by berth's own saver from a scratch store: `busybox:latest` unless another name is given.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore } from '../../src/store/store.js';
import { saveImagesToFile } from '../../src/import/save.js';
import { busyboxImage } from '../fixtures/busybox-image.js';

export async function busyboxArchive(path: string, name = 'busybox:latest'): Promise<void> {
  const scratch = await mkdtemp(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'berth-bbarchive-'));
  try {
    const store = await ContentStore.open(scratch);
    await busyboxImage(store, name);
    await saveImagesToFile(store, [name], path, { format: 'docker' });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
