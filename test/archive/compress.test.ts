import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import * as zlib from 'node:zlib';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compressStream, decompressStream, detectCompression, zlibZstd, zstdBackend } from '../../src/archive/compress.js';
import { isBerthError } from '../../src/errors.js';

const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, 7)]);
const chunks = (b: Buffer, n = 4096) => Readable.from(Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, (i + 1) * n)));

describe('compression', () => {
  it('round-trips gzip and zstd, readable by the gzip and zstd tools', async () => {
    const gz = await buffer(chunks(data).pipe(compressStream('gzip', 1)));
    expect(gunzipSync(gz).equals(data)).toBe(true);
    const zst = await buffer(chunks(data).pipe(compressStream('zstd', 3)));
    expect(execFileSync('zstd', ['-dc'], { input: zst, maxBuffer: 1 << 24 }).equals(data)).toBe(true);
    expect((await buffer(chunks(zst).pipe(decompressStream('zstd')))).equals(data)).toBe(true);
    expect((await buffer(chunks(gz).pipe(decompressStream('gzip')))).equals(data)).toBe(true);
  });

  it('gzips blocks in parallel into the same bytes however the input is chunked; gzip and the tools read it whole', async () => {
    const big = Buffer.concat([randomBytes(2_500_000), Buffer.alloc(1_200_000, 1)]);
    const a = await buffer(chunks(big, 4096).pipe(compressStream('gzip')));
    const b = await buffer(chunks(big, 1_000_003).pipe(compressStream('gzip')));
    expect(b.equals(a)).toBe(true);
    expect(gunzipSync(a).equals(big)).toBe(true);
    expect(execFileSync('gzip', ['-dc'], { input: a, maxBuffer: 1 << 24 }).equals(big)).toBe(true);
    expect((await buffer(chunks(a).pipe(decompressStream('gzip')))).equals(big)).toBe(true);
    expect(gunzipSync(await buffer(Readable.from([]).pipe(compressStream('gzip')))).length).toBe(0);
  });

  it('sniffs the compression from magic bytes split across chunks and gives every byte back', async () => {
    const zst = execFileSync('zstd', ['-c', '-q'], { input: data, maxBuffer: 1 << 24 });
    for (const [buf, want] of [[gzipSync(data), 'gzip'], [zst, 'zstd'], [data, 'none'], [Buffer.from('ab'), 'none'], [Buffer.alloc(0), 'none']] as const) {
      const { compression, stream } = await detectCompression(chunks(buf, 1));
      expect(compression).toBe(want);
      expect((await buffer(stream)).equals(buf)).toBe(true);
    }
  });

  it('fails corrupt zstd data with one clear line', async () => {
    const bad = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(100)]);
    const err = await buffer(Readable.from([bad]).pipe(decompressStream('zstd', 'layer sha256:x'))).catch((e: unknown) => e);
    expect(isBerthError(err, 'INVALID_ARGUMENT')).toBe(true);
    expect((err as Error).message).toMatch(/^layer sha256:x: /);
    expect((err as Error).message).not.toContain('\n');
  });

  it("uses zlib's zstd exactly when this Node has one (feature detection), else the zstd program, at the level asked", async () => {
    const has = typeof (zlib as Record<string, unknown>).createZstdCompress === 'function';
    expect(zstdBackend).toBe(has ? 'zlib' : 'process');
    expect(zlibZstd({})).toBeUndefined();
    expect(zlibZstd({ createZstdCompress() {}, createZstdDecompress() {} })).toBeUndefined();
    const shaped = { createZstdCompress() {}, createZstdDecompress() {}, constants: { ZSTD_c_compressionLevel: 100 } };
    expect(zlibZstd(shaped)).toBe(shaped);
    // Whichever runs here: the level reaches it, and the zstd tool reads what it writes.
    const words = ['layer', 'blob', 'digest', 'manifest', 'index', 'config', 'tar', 'gzip'];
    const text = Buffer.from(Array.from(randomBytes(400_000), (b) => words[b & 7]).join(' '));
    const fast = await buffer(chunks(text).pipe(compressStream('zstd', 1)));
    const small = await buffer(chunks(text).pipe(compressStream('zstd', 19)));
    expect(small.length).toBeLessThan(fast.length);
    for (const z of [fast, small]) expect(execFileSync('zstd', ['-dc'], { input: z, maxBuffer: 1 << 24 }).equals(text)).toBe(true);
  });
});
