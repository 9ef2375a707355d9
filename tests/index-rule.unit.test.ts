import { describe, expect, it } from 'vitest';
import { type IndexKey, queriesOf, unservedFilter, unservedQuery, unservedSort } from './helpers/index-rule.js';

const indexes: IndexKey[] = [
  { ownerId: 1, name: 1 },
  { ownerId: 1, _id: 1 },
  { enabled: 1, nextRunAt: 1 },
  { jobId: 1, _id: -1 },
  { 'data.jobId': 1 },
];

describe('unservedFilter: the check notablescan makes, on declared indexes', () => {
  it('rejects a filter on an unindexed field, and an empty filter', () => {
    expect(unservedFilter({ status: 'idle' }, indexes)).toMatch(/no index leads with a field of the filter \(status\)/);
    expect(unservedFilter({}, indexes)).toMatch(/collection scan/);
    // The second key of a compound index is not a prefix.
    expect(unservedFilter({ name: 'a' }, indexes)).toBeDefined();
    expect(unservedFilter({ nextRunAt: { $lte: new Date() } }, indexes)).toBeDefined();
  });

  it('accepts a filter served by a compound index prefix, whatever else it holds', () => {
    expect(unservedFilter({ ownerId: 'u' }, indexes)).toBeUndefined();
    expect(unservedFilter({ ownerId: 'u', status: 'idle', type: 'x' }, indexes)).toBeUndefined();
    expect(unservedFilter({ enabled: true, nextRunAt: { $lte: new Date() } }, indexes)).toBeUndefined();
    expect(unservedFilter({ 'data.jobId': 'j' }, indexes)).toBeUndefined();
  });

  it('always has the _id index', () => {
    expect(unservedFilter({ _id: 'x', status: 'idle' }, [])).toBeUndefined();
    expect(unservedFilter({ _id: { $in: ['a', 'b'] } }, [])).toBeUndefined();
  });

  it('counts $in, ranges, $exists and $ne as bounds; $not, $expr and $size do not bound', () => {
    for (const condition of [{ $in: ['a', 'b'] }, { $gt: 1 }, { $exists: true }, { $ne: null }, { $eq: 'a' }])
      expect(unservedFilter({ ownerId: condition }, indexes)).toBeUndefined();
    expect(unservedFilter({ ownerId: { $size: 2 } }, indexes)).toBeDefined();
    expect(unservedFilter({ $expr: { $eq: ['$ownerId', 'u'] } }, indexes)).toBeDefined();
    expect(unservedFilter({ $nor: [{ ownerId: 'u' }] }, indexes)).toBeDefined();
  });

  it('needs every $or branch served, unless a field beside the $or is', () => {
    expect(unservedFilter({ $or: [{ ownerId: 'u' }, { _id: 'x' }] }, indexes)).toBeUndefined();
    expect(unservedFilter({ $or: [{ ownerId: 'u' }, { status: 'idle' }] }, indexes)).toBeDefined();
    expect(unservedFilter({ ownerId: 'u', $or: [{ status: 'idle' }, { type: 'x' }] }, indexes)).toBeUndefined();
    expect(unservedFilter({ $and: [{ status: 'idle' }, { jobId: 'j' }] }, indexes)).toBeUndefined();
  });
});

describe('unservedSort', () => {
  it('accepts a sort that follows the equality prefix of one index, in its direction or reversed', () => {
    expect(unservedSort({ ownerId: 'u' }, { _id: 1 }, indexes)).toBeUndefined();
    expect(unservedSort({ ownerId: 'u', _id: { $gt: 'c' } }, { _id: 1 }, indexes)).toBeUndefined();
    expect(unservedSort({ jobId: 'j' }, { _id: 1 }, indexes)).toBeUndefined();
    expect(unservedSort({}, { _id: -1 }, indexes)).toBeUndefined();
  });

  it('rejects a sort with no index in its order after the equalities', () => {
    expect(unservedSort({ ownerId: 'u' }, { createdAt: -1 }, indexes)).toMatch(/no index reads in the order/);
    // A range on the first key is not an equality: {enabled:1,nextRunAt:1} cannot give nextRunAt's order.
    expect(unservedSort({ enabled: { $in: [true, false] } }, { nextRunAt: 1 }, indexes)).toBeDefined();
    expect(unservedSort({ enabled: true }, { nextRunAt: 1 }, indexes)).toBeUndefined();
    // Mixed directions that are neither the index's nor its reverse.
    expect(unservedSort({}, { ownerId: 1, name: -1 }, indexes)).toBeDefined();
  });

  it('judges the filter too: an empty filter in an index order is an index scan', () => {
    expect(unservedQuery({}, { _id: 1 }, indexes)).toBeUndefined();
    expect(unservedQuery({ status: 'x' }, { _id: 1 }, indexes)).toBeDefined();
  });
});

describe('queriesOf: the queries in a command', () => {
  it('reads find, aggregate ($match first), count, distinct, update, delete and findAndModify', () => {
    expect(queriesOf('find', { find: 'c', filter: { a: 1 }, sort: { b: 1 } })).toEqual([
      { command: 'find', collection: 'c', filter: { a: 1 }, sort: { b: 1 } },
    ]);
    expect(queriesOf('aggregate', { aggregate: 'c', pipeline: [{ $match: { a: 1 } }, { $sort: { b: -1 } }] })).toEqual([
      { command: 'aggregate', collection: 'c', filter: { a: 1 }, sort: { b: -1 } },
    ]);
    expect(queriesOf('aggregate', { aggregate: 'c', pipeline: [{ $group: { _id: 1 } }] })[0]!.filter).toEqual({});
    expect(queriesOf('count', { count: 'c', query: { a: 1 } })[0]!.filter).toEqual({ a: 1 });
    expect(queriesOf('distinct', { distinct: 'c', key: 'k', query: { a: 1 } })[0]!.filter).toEqual({ a: 1 });
    expect(queriesOf('update', { update: 'c', updates: [{ q: { a: 1 } }, { q: { b: 2 } }] })).toHaveLength(2);
    expect(queriesOf('delete', { delete: 'c', deletes: [{ q: { a: 1 }, limit: 1 }] })[0]!.filter).toEqual({ a: 1 });
    expect(queriesOf('findAndModify', { findAndModify: 'c', query: { a: 1 }, sort: { p: -1 } })[0]).toMatchObject({
      filter: { a: 1 },
      sort: { p: -1 },
    });
    expect(queriesOf('insert', { insert: 'c', documents: [] })).toEqual([]);
    // The driver sends a sort as a Map.
    expect(queriesOf('find', { find: 'c', filter: {}, sort: new Map([['_id', 1]]) })[0]!.sort).toEqual({ _id: 1 });
  });
});
