import { describe, expect, it } from 'vitest';
import { Limiter } from '../../src/oci/limit.js';

describe('Limiter', () => {
  it('never runs more than its limit at once, runs everything, and frees a slot on failure', async () => {
    const lim = new Limiter(2);
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    const job = (i: number) =>
      lim.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        if (i === 3) throw new Error('boom');
        done.push(i);
        return i;
      });
    const results = await Promise.allSettled([0, 1, 2, 3, 4, 5, 6].map(job));
    expect(peak).toBe(2);
    expect(done.sort()).toEqual([0, 1, 2, 4, 5, 6]);
    expect(results[3]!.status).toBe('rejected');
    // The failed job released its slot: a later job still runs.
    await expect(lim.run(async () => 'after')).resolves.toBe('after');
  });
});
