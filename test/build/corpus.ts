/**
 * The shared Dockerfile conformance corpus (../shared/build-corpus, see its README), as both
 * build backends' tests read it.
 *
 * The corpus folder is read-only (its files lost their write bits when it was shared); the
 * expected modes are those of the files as they were checked in (0644/0755), so each case's
 * context is copied and given u+w back before the build, without the corpus's own files.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Descriptor, Digest } from '../../src/oci/types.js';
import { tagImage } from '../../src/store/images.js';
import type { ContentStore } from '../../src/store/store.js';

export const CORPUS = process.env.BERTH_BUILD_CORPUS ?? fileURLToPath(new URL('../../../shared/build-corpus/', import.meta.url));
export const CORPUS_CASES = existsSync(join(CORPUS, 'cases')) ? readdirSync(join(CORPUS, 'cases')).sort() : [];

/**
 * Context files whose mode the shared corpus lost (copy-basic/two.txt was 0640 when BuildKit
 * built it; the read-only shared copy has 0444): their mode cannot be compared.
 */
export const MODE_LOST: Record<string, string[]> = { 'copy-basic': ['/many/two.txt', '/glob/two.txt'] };

export interface CaseConfig {
  buildArgs?: Record<string, string>;
  target?: string;
}

/** A case's `case.json` (build args, target), or {}. */
export function caseConfig(name: string): CaseConfig {
  const f = join(CORPUS, 'cases', name, 'case.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as CaseConfig) : {};
}

/** Copy a case's context under `dir` with write bits back and without expected.json/case.json. */
export function prepareContext(name: string, dir: string): string {
  const ctx = join(dir, name);
  mkdirSync(dir, { recursive: true });
  execFileSync('cp', ['-a', join(CORPUS, 'cases', name), ctx]);
  execFileSync('chmod', ['-R', 'u+w', ctx]);
  // The corpus's own files were not part of the context BuildKit saw.
  execFileSync('rm', ['-f', join(ctx, 'expected.json'), join(ctx, 'case.json')]);
  return ctx;
}

/**
 * The corpus base image (make-base.py writes it as an OCI layout at `layout`), put into `store`
 * and tagged `name`; its root descriptor.
 */
export async function storeCorpusBase(store: ContentStore, layout: string, name = 'base'): Promise<Descriptor> {
  execFileSync('python3', [join(CORPUS, 'make-base.py'), layout]);
  for (const f of readdirSync(join(layout, 'blobs', 'sha256'))) {
    await store.putBytes(readFileSync(join(layout, 'blobs', 'sha256', f)), { digest: `sha256:${f}` as Digest });
  }
  const m = (JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: Digest; size: number; mediaType: string }[] }).manifests[0]!;
  const desc: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.size };
  await tagImage(store, name, desc);
  return desc;
}
