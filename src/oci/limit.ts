/**
 * A counting semaphore. Pull and push give the graph walk more slots than this allows
 * transfers, so the per-blob round trips (ingest open + GET headers on pull, HEAD + POST on
 * push) of the next blobs overlap the bodies still flowing.
 */
export class Limiter {
  readonly #max: number;
  #running = 0;
  readonly #waiters: (() => void)[] = [];

  constructor(max: number) {
    this.#max = Math.max(1, max);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#running >= this.#max) await new Promise<void>((r) => this.#waiters.push(r));
    this.#running++;
    try {
      return await fn();
    } finally {
      this.#running--;
      this.#waiters.shift()?.();
    }
  }
}
