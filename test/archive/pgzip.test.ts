import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ParallelGzip, SEGMENT } from '../../src/archive/pgzip.js';

const chunks = (b: Buffer, n: number) => Readable.from(Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, (i + 1) * n)));
const pgzip = (b: Buffer, n = 65536, level = -1, parallel = 2) => buffer(chunks(b, n).pipe(new ParallelGzip(level, parallel)));

/** Text-like bytes that deflate shrinks (words from a small vocabulary). */
function text(size: number, seed = 1): Buffer {
  const words = ['layer', 'image', 'container', 'digest', 'manifest', 'config', 'the', 'of', 'a', 'tar', '\n', 'berth', 'overlay', 'gzip'];
  const out = Buffer.alloc(size);
  let x = seed;
  for (let off = 0; off < size; ) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    off += out.write(words[x % words.length]! + ' ', off);
  }
  return out;
}

describe('ParallelGzip', () => {
  it('writes one gzip member that gzip, Python and Node read back, for sizes around the segment size', async () => {
    const mixed = Buffer.concat([text(SEGMENT + 300_000), randomBytes(SEGMENT + 5), Buffer.alloc(700_000, 9), randomBytes(1000)]);
    for (const input of [Buffer.alloc(0), Buffer.from('x'), text(63), text(SEGMENT - 1), text(SEGMENT), randomBytes(SEGMENT + 1), mixed]) {
      const gz = await pgzip(input);
      expect(gz.subarray(0, 3).equals(Buffer.from([0x1f, 0x8b, 8]))).toBe(true);
      expect(gunzipSync(gz).equals(input)).toBe(true);
      expect(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 1 << 26 }).equals(input)).toBe(true);
      const py = 'import sys,zlib\nd=zlib.decompressobj(31)\nout=d.decompress(sys.stdin.buffer.read())\nassert d.eof and not d.unused_data, "not exactly one member"\nsys.stdout.buffer.write(out)';
      expect(execFileSync('python3', ['-c', py], { input: gz, maxBuffer: 1 << 26 }).equals(input)).toBe(true);
    }
  });

  it('gives the same bytes however the input is chunked and however many segments run at once', async () => {
    const input = Buffer.concat([randomBytes(1_500_000), text(2_000_000), randomBytes(300_000)]);
    const a = await pgzip(input, 4096, -1, 1);
    for (const [n, p] of [
      [1_000_003, 2],
      [SEGMENT, 4],
      [input.length, 3],
    ] as const) {
      expect((await pgzip(input, n, -1, p)).equals(a)).toBe(true);
    }
    expect(gunzipSync(a).equals(input)).toBe(true);
  });

  it('stores incompressible segments as they are and deflates the rest at the level asked for', async () => {
    const rnd = randomBytes(3 * SEGMENT);
    const gz = await pgzip(rnd);
    // header, 3 segments of 17 stored blocks (5-byte headers), the empty final block, the trailer
    expect(gz.length).toBe(10 + rnd.length + 3 * 17 * 5 + 2 + 8);
    expect(gunzipSync(gz).equals(rnd)).toBe(true);

    const t = text(2 * SEGMENT);
    const l1 = await pgzip(t, 65536, 1);
    const l9 = await pgzip(t, 65536, 9);
    expect(l9.length).toBeLessThan(l1.length);
    expect(l1.length).toBeLessThan(t.length / 2);
    expect(Math.abs(l9.length - gzipSync(t, { level: 9 }).length)).toBeLessThan(t.length / 100); // a ratio like one zlib stream
    expect(gunzipSync(l9).equals(t)).toBe(true);
    // level 0 stores everything
    expect((await pgzip(t, 65536, 0)).length).toBe(10 + t.length + 2 * 17 * 5 + 2 + 8);
  });

  it('finds repeats across segments and up to the window size inside random-looking data', async () => {
    // A 20 KiB random pattern repeated: no 2 KiB sample repeats, but deflate's window sees it.
    const pattern = randomBytes(20 * 1024);
    const rep = Buffer.concat(Array.from({ length: 160 }, () => pattern));
    const gz = await pgzip(rep);
    expect(gz.length).toBeLessThan(rep.length / 50); // stored it would be larger than rep
    expect(gunzipSync(gz).equals(rep)).toBe(true);
  });

  it('reports a bad level as INVALID_ARGUMENT', () => {
    for (const level of [10, -2, 1.5]) expect(() => new ParallelGzip(level, 2)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
