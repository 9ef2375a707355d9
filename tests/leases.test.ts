import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUCKETS, bucketOf, bucketRange, bucketRanges } from '../src/scheduler/buckets.js';
import { LEASES_COLLECTION, PartitionLeases } from '../src/scheduler/leases.js';
import { type Harness, startHarness, waitFor } from './helpers/harness.js';

// Lease timing shortened here to keep the file fast; tests/chaos.test.ts and the failover
// benchmark show failover with the default SCHEDULER_LEASE_MS on real worker processes.
const LEASE_MS = 1000;
const PARTITIONS = 6;

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const worker = (name: string) =>
  new PartitionLeases(h.conn, { worker: name, partitions: PARTITIONS, leaseMs: LEASE_MS, logger: h.logger });

/** Rounds of every worker given, as their timers would run them, until `done` holds. */
async function roundsUntil(workers: PartitionLeases[], done: () => boolean, what: string) {
  return waitFor(
    async () => {
      for (const w of workers) await w.round();
      return done();
    },
    { what, intervalMs: LEASE_MS / 5, timeoutMs: 15_000 },
  );
}

const held = (workers: PartitionLeases[]) => workers.map((w) => w.current().length);

describe('buckets and partitions', () => {
  it('gives every bucket to exactly one partition, for any partition count', () => {
    for (const count of [1, 2, 3, 7, 16, 1024]) {
      const owners = new Array(BUCKETS).fill(0);
      for (let p = 0; p < count; p++) {
        const [from, to] = bucketRange(p, count);
        for (let b = from; b < to; b++) owners[b]++;
      }
      expect(owners.every((n) => n === 1)).toBe(true);
    }
    expect(bucketRanges([3, 0, 1], 4)).toEqual([
      [0, 512],
      [768, 1024],
    ]);
  });

  it('spreads consecutive ids over the buckets', () => {
    const base = '65a1b2c3d4e5f6a7b8';
    const buckets = Array.from({ length: 64 }, (_, i) => bucketOf(base + (0x100000 + i).toString(16)));
    expect(new Set(buckets).size).toBe(64);
  });
});

describe('partition leases', () => {
  it('one worker takes every partition; a second gets half at its next rounds; the first gives them back', async () => {
    await h.conn.collection(LEASES_COLLECTION).deleteMany({});
    const a = worker('lease-a');
    const b = worker('lease-b');
    await a.prepare();
    await a.round();
    expect(a.current()).toHaveLength(PARTITIONS);
    await roundsUntil([a, b], () => held([a, b]).join() === '3,3', 'the partitions to be shared');
    // Never both firing one partition once settled.
    expect(new Set([...a.current(), ...b.current()]).size).toBe(PARTITIONS);
    await a.release();
    await b.release();
  });

  it('a worker that stops renewing (killed) loses its partitions to the others after the lease', async () => {
    await h.conn.collection(LEASES_COLLECTION).deleteMany({});
    const a = worker('kill-a');
    const b = worker('kill-b');
    await a.prepare();
    await roundsUntil([a, b], () => held([a, b]).join() === '3,3', 'the partitions to be shared');
    const killedAt = Date.now();
    // a does no more rounds, as after SIGKILL: its own clock stops it firing before others may start.
    await roundsUntil([b], () => b.current().length === PARTITIONS, 'b to take every partition');
    const failoverMs = Date.now() - killedAt;
    expect(a.current()).toEqual([]);
    expect(failoverMs).toBeGreaterThanOrEqual(LEASE_MS * 0.8);
    expect(failoverMs).toBeLessThan(LEASE_MS * 4);
    // The dead worker is no longer counted alive; the runs it started before are not its new incarnation's.
    expect(b.isAlive('kill-a', new Date())).toBe(false);
    const restarted = worker('kill-a');
    await restarted.round();
    await b.round();
    expect(b.isAlive('kill-a', new Date(killedAt))).toBe(false);
    expect(b.isAlive('kill-a', new Date())).toBe(true);
    await restarted.release();
    await b.release();
  });

  it('a stopping worker gives its partitions back: another takes them at its next round, not after the lease', async () => {
    await h.conn.collection(LEASES_COLLECTION).deleteMany({});
    const a = worker('stop-a');
    const b = worker('stop-b');
    await a.prepare();
    await roundsUntil([a, b], () => held([a, b]).join() === '3,3', 'the partitions to be shared');
    await a.release();
    await b.round();
    expect(b.current()).toHaveLength(PARTITIONS);
    await b.release();
  });

  it('when two workers both took a partition, the one that lost it stops at its next round', async () => {
    await h.conn.collection(LEASES_COLLECTION).deleteMany({});
    const a = worker('race-a');
    await a.prepare();
    await a.round();
    // As if b's compare-and-set (a read then a write on FerretDB) overwrote a's hold of partition 0.
    await h.conn
      .collection<{ _id: string }>(LEASES_COLLECTION)
      .updateOne({ _id: 'partition-0' }, { $set: { holder: 'race-b', expiresAt: new Date(Date.now() + 60_000) } });
    expect(a.current()).toContain(0);
    await a.round();
    expect(a.current()).not.toContain(0);
    await a.release();
  });
});
