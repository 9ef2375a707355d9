import type { Connection } from 'mongoose';
import { createMissingCollections, createMissingIndexes, isDuplicateKey } from '../db/index.js';
import type { Logger } from '../lib/logger.js';

export const LEASES_COLLECTION = 'scheduler_leases';
export const WORKERS_COLLECTION = 'scheduler_workers';

interface LeaseDoc {
  _id: string;
  holder: string | null;
  expiresAt: Date;
}

interface WorkerDoc {
  _id: string;
  seenAt: Date;
  /** When this incarnation of the worker started: a worker restarted under the same name is a new one. */
  since: Date;
  partitions: number[];
}

export interface LeaseOptions {
  worker: string;
  partitions: number;
  leaseMs: number;
  logger: Logger;
}

const leaseId = (p: number) => `partition-${p}`;

/** Workers not seen for this long are forgotten (their documents removed). */
const FORGET_AFTER_MS = 24 * 3_600_000;

/**
 * Leadership for firing, by partition: a lease per partition, held for `leaseMs` and renewed
 * every fifth of it, independent of how long any run may take. Each round a worker records
 * that it is alive, counts the live workers, keeps or gives back leases down to its fair share
 * (the partitions divided by the live workers, rounded up) and takes expired or free ones up
 * to it. A worker killed holding leases stops renewing them; they expire after `leaseMs` and
 * the others take them at their next round, so no partition waits longer than about
 * `leaseMs` plus a round. A worker stops firing a partition on its own clock before the lease
 * can have expired for the others. Two workers briefly believing they hold one partition (a
 * compare-and-set that is a read then a write: src/db/quirks.ts) fire the same slots, which the
 * runs' unique index accounts for once; the loser finds out at its next renewal.
 */
export class PartitionLeases {
  /** Partition -> the local time until which this worker may fire it. */
  private readonly held = new Map<number, number>();
  private live = new Map<string, Date>();
  private readonly since = new Date();
  private rounds = 0;
  private readonly roundMs: number;

  constructor(
    private readonly conn: Connection,
    private readonly options: LeaseOptions,
  ) {
    this.roundMs = Math.max(100, Math.floor(options.leaseMs / 5));
  }

  private get leases() {
    return this.conn.collection<LeaseDoc>(LEASES_COLLECTION);
  }

  private get workers() {
    return this.conn.collection<WorkerDoc>(WORKERS_COLLECTION);
  }

  /** How often a worker renews and looks for partitions to take. */
  get intervalMs() {
    return this.roundMs;
  }

  /** The partitions this worker may fire now. */
  current(now = Date.now()): number[] {
    return [...this.held].filter(([, until]) => until > now).map(([p]) => p);
  }

  /**
   * Whether the worker that wrote something at `at` (queued or started a run) is alive: seen at
   * the last round, in the incarnation that was running then, not one restarted since.
   */
  isAlive(worker: string, at: Date): boolean {
    const since = this.live.get(worker);
    return since !== undefined && since.getTime() <= at.getTime();
  }

  /** Whether a round has read the live workers yet. */
  get ready() {
    return this.live.size > 0;
  }

  /** Creates the lease documents that are missing and the index of the workers' liveness. */
  async prepare(): Promise<void> {
    await createMissingCollections(this.conn, [LEASES_COLLECTION, WORKERS_COLLECTION]);
    await createMissingIndexes(this.workers, [{ key: { seenAt: 1 }, name: 'seenAt' }]);
    const docs = Array.from({ length: this.options.partitions }, (_, p) => ({
      _id: leaseId(p),
      holder: null,
      expiresAt: new Date(0),
    }));
    try {
      await this.leases.insertMany(docs, { ordered: false });
    } catch (error) {
      const writeErrors = (error as { writeErrors?: unknown[] }).writeErrors ?? [];
      if (!isDuplicateKey(error) && !(writeErrors.length && writeErrors.every(isDuplicateKey))) throw error;
    }
  }

  /** One round: liveness, renewal, giving back above the fair share, taking up to it. */
  async round(): Promise<void> {
    const { worker, partitions, leaseMs } = this.options;
    const started = Date.now();
    const now = new Date(started);
    const expiresAt = new Date(started + leaseMs);
    // Stop firing a fifth of a lease before others may take it: room for a slow round trip.
    const until = started + leaseMs - this.roundMs;
    await this.workers.updateOne(
      { _id: worker },
      { $set: { seenAt: now, since: this.since, partitions: this.current() } },
      { upsert: true },
    );
    const seen = await this.workers
      .find({ seenAt: { $gt: new Date(started - leaseMs) } }, { projection: { _id: 1, since: 1 } })
      .toArray();
    this.live = new Map(seen.map((w) => [w._id, w.since]));
    this.live.set(worker, this.since);
    const fair = Math.ceil(partitions / this.live.size);

    const ids = Array.from({ length: partitions }, (_, p) => leaseId(p));
    const leases = await this.leases.find({ _id: { $in: ids } }).toArray();
    const byPartition = new Map(leases.map((lease) => [Number(lease._id.slice('partition-'.length)), lease]));

    // Leases another worker took meanwhile (ours had expired, or a race it won) are let go.
    for (const p of [...this.held.keys()])
      if (p >= partitions || byPartition.get(p)?.holder !== worker) this.drop(p, 'taken by another worker');

    const mine = [...this.held.keys()].sort((a, b) => a - b);
    const giveBack = mine.slice(fair);
    const keep = mine.slice(0, fair);
    if (giveBack.length) {
      for (const p of giveBack) this.held.delete(p);
      await this.leases.updateMany(
        { _id: { $in: giveBack.map(leaseId) }, holder: worker },
        { $set: { holder: null, expiresAt: new Date(0) } },
      );
      this.options.logger.info({ partitions: giveBack, fair, workers: this.live.size }, 'partitions given back');
    }
    if (keep.length) {
      const { modifiedCount } = await this.leases.updateMany(
        { _id: { $in: keep.map(leaseId) }, holder: worker },
        { $set: { expiresAt } },
      );
      if (modifiedCount === keep.length) for (const p of keep) this.held.set(p, until);
      else await this.confirm(keep, until);
    }

    // Free or expired leases, up to the fair share, starting at a place that differs by worker
    // so workers starting together try different partitions first.
    const offset = hash(worker) % partitions;
    for (let i = 0; i < partitions && this.held.size < fair; i++) {
      const p = (offset + i) % partitions;
      const lease = byPartition.get(p);
      if (!lease || this.held.has(p)) continue;
      if (lease.holder && lease.expiresAt.getTime() > started) continue;
      const { modifiedCount } = await this.leases.updateOne(
        { _id: lease._id, holder: lease.holder, expiresAt: lease.expiresAt },
        { $set: { holder: worker, expiresAt } },
      );
      if (!modifiedCount) continue;
      this.held.set(p, until);
      this.options.logger.info(
        { partition: p, from: lease.holder, expiredMsAgo: lease.holder ? started - lease.expiresAt.getTime() : null },
        'partition taken',
      );
    }
    if (++this.rounds % 1000 === 1)
      await this.workers.deleteMany({ seenAt: { $lt: new Date(started - FORGET_AFTER_MS) } });
  }

  /** After a renewal that changed fewer leases than asked: reads which are still ours. */
  private async confirm(partitions: number[], until: number) {
    const docs = await this.leases.find({ _id: { $in: partitions.map(leaseId) } }).toArray();
    for (const p of partitions) {
      if (docs.find((d) => d._id === leaseId(p))?.holder === this.options.worker) this.held.set(p, until);
      else this.drop(p, 'renewal refused');
    }
  }

  private drop(p: number, reason: string) {
    if (this.held.delete(p)) this.options.logger.warn({ partition: p, reason }, 'partition lost');
  }

  /** Gives every lease back (a worker stopping), so others take them at their next round. */
  async release(): Promise<void> {
    const mine = [...this.held.keys()];
    this.held.clear();
    const { worker } = this.options;
    if (mine.length)
      await this.leases.updateMany(
        { _id: { $in: mine.map(leaseId) }, holder: worker },
        { $set: { holder: null, expiresAt: new Date(0) } },
      );
    await this.workers.deleteOne({ _id: worker });
  }
}

/** A small stable hash of a worker's name (FNV-1a). */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
