import { describe, expect, it } from 'vitest';
import { findUnsafeKey, MAX_JSON_DEPTH } from '../src/lib/safe-keys.js';

describe('findUnsafeKey', () => {
  it.each([
    [{ a: 1, b: [{ c: 'x' }] }, undefined],
    [{ payload: { to: '$not-a-key-but-a-value' } }, undefined],
    [{ $where: 'x' }, '$where'],
    [{ payload: { params: { $gt: 1 } } }, 'payload.params.$gt'],
    [{ payload: { 'a.b': 1 } }, 'payload.a.b'],
    [{ list: [1, [2, { $ne: null }]] }, 'list.1.1.$ne'],
    [{ 'trailing.': 1 }, 'trailing.'],
  ])('%j -> %s', (value, path) => {
    expect(findUnsafeKey(value)?.path).toBe(path);
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels, without recursion (100 000 levels do not overflow the stack)`, () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(findUnsafeKey(deep)?.message).toMatch(/nested more than 32 levels/);
    let fine: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) fine = { a: fine };
    expect(findUnsafeKey(fine)).toBeUndefined();
  });
});
