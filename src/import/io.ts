import { open } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';

/** The first `n` bytes of a file (compression sniffing), read with one positioned read. */
export async function readFileHead(path: string, n = 8): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** A pass-through that counts bytes and reports every 4 MiB (progress for import and save). */
export class ByteCounter extends Transform {
  n = 0;
  #last = 0;
  constructor(private readonly report?: (n: number) => void) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(c: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.n += c.length;
    if (this.report && this.n - this.#last >= 4 << 20) {
      this.#last = this.n;
      this.report(this.n);
    }
    cb(null, c);
  }
}
