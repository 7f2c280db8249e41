/**
 * Container logs in docker's json-file format: one `{"log","stream","time"}` line per output
 * line (a partial line is written when it grows past 16 KiB or the process ends).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Writable } from 'node:stream';

export interface LogEntry {
  log: string;
  stream: 'stdout' | 'stderr';
  time: string;
}

export class LogWriter {
  #out: WriteStream;
  #carry: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };

  constructor(path: string) {
    this.#out = createWriteStream(path, { flags: 'a' });
    this.#out.on('error', () => {});
  }

  write(stream: 'stdout' | 'stderr', b: Buffer): void {
    const text = this.#carry[stream] + b.toString('utf8');
    const parts = text.split('\n');
    this.#carry[stream] = parts.pop() ?? '';
    const time = new Date().toISOString();
    let out = '';
    for (const l of parts) out += JSON.stringify({ log: l + '\n', stream, time }) + '\n';
    if (this.#carry[stream].length > 16384) {
      out += JSON.stringify({ log: this.#carry[stream], stream, time }) + '\n';
      this.#carry[stream] = '';
    }
    if (out) this.#out.write(out);
  }

  /**
   * A Writable for one stream of the process: every chunk goes to the log and to `to` (when
   * given), with `to`'s backpressure.
   */
  tee(stream: 'stdout' | 'stderr', to?: NodeJS.WritableStream): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        this.write(stream, chunk);
        if (!to || to.write(chunk)) cb();
        else to.once('drain', () => cb());
      },
    });
  }

  close(): Promise<void> {
    const time = new Date().toISOString();
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.#carry[s]) this.#out.write(JSON.stringify({ log: this.#carry[s], stream: s, time }) + '\n');
      this.#carry[s] = '';
    }
    return new Promise((r) => this.#out.end(r));
  }
}

/**
 * Read a log: the entries (after `tail`), then with `follow` new ones every 50 ms for as long as
 * `running()` says the writer is alive (and once more after).
 */
export async function readLog(
  path: string,
  o: { follow?: boolean; tail?: number; signal?: AbortSignal; running?: () => Promise<boolean> },
  onEntry: (e: LogEntry) => void,
): Promise<void> {
  let offset = 0;
  let carry = '';
  let first = true;
  const readNew = async (): Promise<void> => {
    const fh = await open(path, 'r').catch(() => undefined);
    if (!fh) return;
    try {
      const { size } = await fh.stat();
      if (size <= offset) return;
      const buf = Buffer.alloc(size - offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      offset += bytesRead;
      const text = carry + buf.subarray(0, bytesRead).toString('utf8');
      const lines = text.split('\n');
      carry = lines.pop() ?? '';
      let entries: LogEntry[] = [];
      for (const l of lines) {
        if (!l) continue;
        try {
          entries.push(JSON.parse(l) as LogEntry);
        } catch {
          entries.push({ log: l + '\n', stream: 'stdout', time: '' });
        }
      }
      if (first && o.tail !== undefined && o.tail >= 0) entries = o.tail === 0 ? [] : entries.slice(-o.tail);
      for (const e of entries) onEntry(e);
    } finally {
      first = false;
      await fh.close();
    }
  };
  await readNew();
  first = false;
  if (!o.follow) return;
  for (;;) {
    if (o.signal?.aborted) return;
    if (!(await (o.running?.() ?? Promise.resolve(false)))) {
      await readNew();
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
    await readNew();
  }
}
