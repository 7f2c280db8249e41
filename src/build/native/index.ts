/**
 * Placeholder for the built-in builder (#9), replaced when that branch merges: it reports itself
 * unavailable so `--builder auto` picks BuildKit or says why neither can build.
 */
import { BerthError } from '../../errors.js';
import type { Builder } from '../builder.js';

export function createNativeBuilder(_opts: { root: string }): Builder {
  return {
    name: 'builtin',
    async available() {
      return { ok: false, why: 'built-in builder not available yet' };
    },
    async build() {
      throw new BerthError('UNSUPPORTED', 'the built-in builder is not available yet', { hint: 'use --builder buildkit' });
    },
  };
}
