import { randomUUID } from 'node:crypto';
import type { Connection } from 'mongoose';
import type { Env } from '../env.js';
import { ensureExpiryIndex } from './expiry.js';
import type { Logger } from './logger.js';

/** The limits the API applies; each is a fixed window of RATE_LIMIT_WINDOW_SECONDS. */
export const RATE_LIMIT_POLICIES = ['ip', 'user', 'run-now'] as const;
export type RateLimitPolicy = (typeof RATE_LIMIT_POLICIES)[number];

export interface RateLimitOutcome {
  policy: RateLimitPolicy;
  quota: number;
  windowSeconds: number;
  remaining: number;
  /** Seconds until the window ends and the quota is whole again. */
  resetSeconds: number;
  allowed: boolean;
}

/** The collection of the shared counts: one document per API instance and window. */
export const RATE_LIMIT_COLLECTION = 'rate_limit_counts';
/** The one query on it (the counts of a window) is served by this index. */
export const RATE_LIMIT_INDEX = { w: 1 } as const;

/** What an instance publishes: its own admitted hits of one window, per policy and key. */
interface CountsDoc {
  _id: string;
  w: Date;
  instance: string;
  counts: { p: RateLimitPolicy; k: string; n: number }[];
  expire: Date;
}

type RateLimitConfig = Pick<
  Env,
  | 'RATE_LIMIT_WINDOW_SECONDS'
  | 'RATE_LIMIT_PER_IP'
  | 'RATE_LIMIT_PER_USER'
  | 'RATE_LIMIT_RUN_NOW_PER_USER'
  | 'RATE_LIMIT_SYNC_MS'
  | 'RATE_LIMIT_LOCAL_SHARE'
>;

const quotaOf = (config: RateLimitConfig, policy: RateLimitPolicy) =>
  ({ ip: config.RATE_LIMIT_PER_IP, user: config.RATE_LIMIT_PER_USER, 'run-now': config.RATE_LIMIT_RUN_NOW_PER_USER })[
    policy
  ];

/**
 * Hits of one key an instance may admit without looking at the shared count since it last
 * wrote its own: the slack each instance adds to the bound (see RateLimits). 0 consults the
 * database for every hit, which makes the count exact across instances.
 */
export const localAllowance = (quota: number, share: number) => Math.floor(quota * share);

/** One window's counts as this instance knows them. Keys are `${policy}:${key}`. */
class WindowCounts {
  /** Hits this instance admitted. */
  readonly own = new Map<string, number>();
  /** `own` as of the last write the database acknowledged. */
  written = new Map<string, number>();
  /** The other instances' counts as of the last read. */
  others = new Map<string, number>();
  dirty = false;
  /** A hit was refused on what the last read said: read again at the next tick, it may be stale. */
  stale = false;
  constructor(readonly start: number) {}
  known = (id: string) => (this.others.get(id) ?? 0) + (this.own.get(id) ?? 0);
  unwritten = (id: string) => (this.own.get(id) ?? 0) - (this.written.get(id) ?? 0);
  add(id: string, n: number) {
    this.own.set(id, (this.own.get(id) ?? 0) + n);
    this.dirty = true;
  }
}

/**
 * Rate limits counted in memory per API instance and reconciled with a shared count in the
 * database in batches, so that a request costs no database round trip in the common case.
 *
 * Windows are fixed and aligned to the clock (a window starts at a multiple of its length), so
 * every instance agrees on them without asking. Each instance writes its own counts of the
 * window to a document of its own (a `$set` of absolute numbers by `_id`: no read-modify-write,
 * so nothing is lost on FerretDB 1.x, whose findAndModify and `$inc` are a read then a write)
 * and reads the others' documents back, every RATE_LIMIT_SYNC_MS when it counted something, and
 * on the request path when a key has used its local allowance B = ⌊quota × RATE_LIMIT_LOCAL_SHARE⌋
 * since the last write. A hit is refused once the others' counts (last read) plus its own reach
 * the quota; that refusal needs no database.
 *
 * The bound: with I instances on one database, a key gets at most quota + I × B requests through
 * in one window, whatever the traffic and the sync interval (each instance admits at most B hits
 * that the last successful read of any instance did not include; the reasoning is in
 * docs/security.md). With B = 0 (small quotas) it is exact. The interval only decides how soon
 * the counts of keys far from their limit reach the database.
 *
 * A hit judged on the request path is published before it is judged, so two instances racing
 * for a key's last requests cannot both take them; a refused one is withdrawn at the next sync,
 * and until then the other instances may refuse that key a little early (never late).
 *
 * While the database does not answer, an instance counts alone (each still stops a key at its
 * quota, so at most I × quota across instances) and answers from memory instead of failing the
 * request; a failed sync stops the request path from waiting on the next ones until a background
 * sync succeeds again.
 */
export class RateLimits {
  private readonly quotas = new Map<RateLimitPolicy, number>();
  private readonly instance = randomUUID();
  private readonly windowMs: number;
  private readonly collection;
  private current: WindowCounts;
  private healthy = true;
  private running?: Promise<boolean>;
  private queued?: Promise<boolean>;
  private readonly timer: NodeJS.Timeout;

  constructor(
    conn: Connection,
    readonly config: RateLimitConfig,
    private readonly logger?: Logger,
  ) {
    for (const policy of RATE_LIMIT_POLICIES) {
      const quota = quotaOf(config, policy);
      if (quota > 0) this.quotas.set(policy, quota);
    }
    this.windowMs = config.RATE_LIMIT_WINDOW_SECONDS * 1000;
    this.collection = conn.collection<CountsDoc>(RATE_LIMIT_COLLECTION);
    this.current = new WindowCounts(this.windowStart(Date.now()));
    this.timer = setInterval(() => {
      const counts = this.window(Date.now());
      if (counts.dirty || counts.stale) void this.sync();
    }, config.RATE_LIMIT_SYNC_MS);
    this.timer.unref();
  }

  /** Whether the policy is on (its quota above 0). */
  enabled(policy: RateLimitPolicy): boolean {
    return this.quotas.has(policy);
  }

  /** Creates the index of the counts' one query, and a TTL index where the database has them. */
  async ensureIndexes(): Promise<void> {
    await this.collection.createIndex(RATE_LIMIT_INDEX);
    await ensureExpiryIndex(this.collection, 'expire');
  }

  /** Ends the background sync. */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Counts one request against the policy for `key`; never throws. */
  async consume(policy: RateLimitPolicy, key: string): Promise<RateLimitOutcome | undefined> {
    const quota = this.quotas.get(policy);
    if (quota === undefined) return undefined;
    const id = `${policy}:${key}`;
    const counts = this.window(Date.now());
    const answer = (allowed: boolean): RateLimitOutcome => ({
      policy,
      quota,
      windowSeconds: this.config.RATE_LIMIT_WINDOW_SECONDS,
      remaining: Math.max(0, quota - counts.known(id)),
      resetSeconds: Math.max(1, Math.ceil((counts.start + this.windowMs - Date.now()) / 1000)),
      allowed,
    });
    if (counts.known(id) >= quota) {
      counts.stale = true;
      return answer(false);
    }
    const allowance = localAllowance(quota, this.config.RATE_LIMIT_LOCAL_SHARE);
    counts.add(id, 1);
    if (counts.unwritten(id) <= allowance || !this.healthy) return answer(true);
    // The allowance is used: publish this hit with the others and read what the rest counted.
    // When the database fails the instance goes on alone: the hit is judged on what it knows.
    await this.sync();
    if (counts.known(id) <= quota) return answer(true);
    // Refused: the hit was published with the others and is withdrawn at the next tick.
    counts.add(id, -1);
    return answer(false);
  }

  /** Publishes this instance's counts and reads the others'; true when both succeeded. */
  sync(): Promise<boolean> {
    if (!this.running) {
      this.running = this.syncOnce().finally(() => (this.running = undefined));
      return this.running;
    }
    // A sync is going, but its write may predate the caller's hit: the caller joins the next one.
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.sync();
    });
    return this.queued;
  }

  private async syncOnce(): Promise<boolean> {
    const counts = this.window(Date.now());
    const snapshot = new Map(counts.own);
    counts.dirty = false;
    counts.stale = false;
    const w = new Date(counts.start);
    try {
      await this.collection.updateOne(
        { _id: `${counts.start}:${this.instance}` },
        {
          $set: {
            w,
            instance: this.instance,
            counts: [...snapshot].map(([id, n]) => {
              const at = id.indexOf(':');
              return { p: id.slice(0, at) as RateLimitPolicy, k: id.slice(at + 1), n };
            }),
            // Kept a window longer than needed, so a clock a little ahead cannot drop a live count.
            expire: new Date(counts.start + 2 * this.windowMs),
          },
        },
        { upsert: true },
      );
      counts.written = snapshot;
      const others = new Map<string, number>();
      for (const doc of await this.collection.find({ w }).toArray()) {
        if (doc.instance === this.instance) continue;
        for (const { p, k, n } of doc.counts) others.set(`${p}:${k}`, (others.get(`${p}:${k}`) ?? 0) + n);
      }
      counts.others = others;
      this.healthy = true;
      return true;
    } catch (error) {
      counts.dirty = true;
      if (this.healthy) this.logger?.warn({ err: error }, 'rate-limit counts not synced; counting in memory');
      this.healthy = false;
      return false;
    }
  }

  private windowStart(now: number): number {
    return now - (now % this.windowMs);
  }

  /** The counts of the window `now` falls in; a new window starts from nothing. */
  private window(now: number): WindowCounts {
    const start = this.windowStart(now);
    if (start !== this.current.start) this.current = new WindowCounts(start);
    return this.current;
  }
}
