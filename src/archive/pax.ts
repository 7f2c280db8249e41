/**
 * tar-stream decodes every PAX record value as UTF-8, which mangles binary xattr values
 * (`SCHILY.xattr.security.capability` holds a little-endian struct). This module replaces
 * tar-stream's `decodePax` (the module is shared through Node's require cache, so extract.js
 * sees the replacement) with one that keeps `SCHILY.xattr.*` values as latin1 strings, which
 * map 1:1 to the original bytes (`Buffer.from(v, 'latin1')`). Other values stay UTF-8.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

function decodePax(buf: Buffer): Record<string, string> {
  const result: Record<string, string> = {};
  while (buf.length) {
    let i = 0;
    while (i < buf.length && buf[i] !== 0x20) i++;
    const len = parseInt(buf.subarray(0, i).toString('latin1'), 10);
    if (!len || len <= i + 1 || len > buf.length) return result;
    const rec = buf.subarray(i + 1, len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq === -1) return result;
    const key = rec.subarray(0, eq).toString('utf8');
    const val = rec.subarray(eq + 1);
    result[key] = key.startsWith('SCHILY.xattr.') ? val.toString('latin1') : val.toString('utf8');
    buf = buf.subarray(len);
  }
  return result;
}

let patched = false;

/** Install the binary-safe PAX decoder (idempotent). */
export function patchPaxDecoder(): void {
  if (patched) return;
  patched = true;
  const headers = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as { decodePax: typeof decodePax };
  headers.decodePax = decodePax;
}

/** PAX xattr records of a header: name -> raw value. */
export function paxXattrs(pax: Record<string, string> | null | undefined): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!pax) return out;
  for (const [k, v] of Object.entries(pax)) {
    if (k.startsWith('SCHILY.xattr.')) out.set(k.slice('SCHILY.xattr.'.length), Buffer.from(v, 'latin1'));
  }
  return out;
}
