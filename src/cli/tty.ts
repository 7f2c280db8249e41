import { fstatSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * `isatty(fd)` without loading node:tty (and node:net under it) for what cannot be a terminal:
 * a file, pipe or socket, or a memory device such as /dev/null (character devices of major 1).
 */
export function isTerminal(fd: number): boolean {
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    return false;
  }
  if (!st.isCharacterDevice()) return false;
  const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn) | Number((BigInt(st.rdev) >> 32n) & ~0xfffn);
  if (major === 1) return false;
  return (createRequire(import.meta.url)('node:tty') as typeof import('node:tty')).isatty(fd);
}
