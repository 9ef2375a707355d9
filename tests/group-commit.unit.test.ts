import { describe, expect, it } from 'vitest';
import { groupCommit } from '../src/lib/group-commit.js';

describe('groupCommit', () => {
  it('runs up to `parallel` writes at once, each with what arrived while the others were in flight', async () => {
    const releases: (() => void)[] = [];
    const batches: number[][] = [];
    const add = groupCommit(
      async (items: number[]) => {
        batches.push(items);
        await new Promise<void>((r) => releases.push(r));
        return items;
      },
      { parallel: 2 },
    );
    const first = add(1);
    await new Promise((r) => setImmediate(r));
    const second = [add(2), add(3)];
    await new Promise((r) => setImmediate(r));
    const third = add(4);
    await new Promise((r) => setImmediate(r));
    // Two writes in flight ([1], [2, 3]); the third item waits for one of them.
    expect(batches).toEqual([[1], [2, 3]]);
    releases.shift()!();
    await first;
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([[1], [2, 3], [4]]);
    for (const release of releases.splice(0)) release();
    await Promise.all(second);
    releases.shift()?.();
    expect(await third).toBe(4);
  });

  it('writes items handed in together as one batch, and those arriving during a write as the next', async () => {
    const batches: number[][] = [];
    let release: () => void = () => {};
    const write = async (items: number[]) => {
      batches.push(items);
      if (batches.length === 1) await new Promise<void>((r) => (release = r));
      return items.map((i) => i * 10);
    };
    const add = groupCommit(write);
    const first = [add(1), add(2), add(3)];
    await new Promise((r) => setImmediate(r));
    const second = [add(4), add(5)];
    release();
    expect(await Promise.all([...first, ...second])).toEqual([10, 20, 30, 40, 50]);
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
  });

  it('splits at the batch limit and rejects every caller of a failed batch, then goes on', async () => {
    const batches: number[][] = [];
    const add = groupCommit(
      async (items: number[]) => {
        batches.push(items);
        if (items.includes(3)) throw new Error('boom');
        return items;
      },
      { maxBatch: 2 },
    );
    const results = await Promise.allSettled([add(1), add(2), add(3), add(4), add(5)]);
    expect(batches).toEqual([[1, 2], [3, 4], [5]]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(await add(6)).toBe(6);
  });
});
