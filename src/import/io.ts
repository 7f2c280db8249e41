import { open } from 'node:fs/promises';

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
