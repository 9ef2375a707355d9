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

/** The collection of the shared counts: one document per API instance. */
export const RATE_LIMIT_COLLECTION = 'rate_limit_counts';
/** The one query on it (the documents not yet expired) is served by the expiry index on `expire`. */
export const RATE_LIMIT_EXPIRY_FIELD = 'expire';

/** What an instance publishes: its own admitted hits per policy and key, each with its window's start. */
interface CountsDoc {
  _id: string;
  counts: { p: RateLimitPolicy; k: string; n: number; s: Date }[];
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

/** This instance's count of one key in its current window. */
interface OwnCount {
  start: number;
  /** Hits admitted here. */
  n: number;
  /** `n` as of the last write the database acknowledged. */
  written: number;
}

/**
 * Rate limits counted in memory per API instance and reconciled with a shared count in the
 * database in batches, so that a request costs no database round trip in the common case.
 *
 * A key's window is fixed: it starts at the key's first hit, or at the start another instance
 * reported for the key if that window is still open, so instances that have read each other
 * agree on it. Each instance writes its own counts to a document of its own (a `$set` of
 * absolute numbers by `_id`: no read-modify-write, so nothing is lost where findAndModify and
 * `$inc` are a read then a write, see src/db/quirks.ts) and reads the others' documents back, every
 * RATE_LIMIT_SYNC_MS when it counted something, and on the request path when a key has used its
 * local allowance B = ⌊quota × RATE_LIMIT_LOCAL_SHARE⌋ since the last write. A hit is refused once
 * the others' open counts (last read) plus its own reach the quota; that refusal needs no database.
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
  /** This instance's counts, by `${policy}:${key}`. */
  private readonly own = new Map<string, OwnCount>();
  /** The other instances' counts as of the last read, each with its window's start. */
  private others = new Map<string, { n: number; start: number }[]>();
  /** Counted something since the last write. */
  private dirty = false;
  /** Refused a hit on what the last read said: read again at the next tick, it may be stale. */
  private stale = false;
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
    this.timer = setInterval(() => {
      if (this.dirty || this.stale) void this.sync();
    }, config.RATE_LIMIT_SYNC_MS);
    this.timer.unref();
  }

  /** Whether the policy is on (its quota above 0). */
  enabled(policy: RateLimitPolicy): boolean {
    return this.quotas.has(policy);
  }

  /** Creates the index of the counts' one query: a TTL index where the database has them. */
  async ensureIndexes(): Promise<void> {
    await ensureExpiryIndex(this.collection, RATE_LIMIT_EXPIRY_FIELD);
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
    const own = this.ownCount(id, Date.now());
    const known = () => own.n + this.othersOf(id, Date.now());
    const answer = (allowed: boolean): RateLimitOutcome => ({
      policy,
      quota,
      windowSeconds: this.config.RATE_LIMIT_WINDOW_SECONDS,
      remaining: Math.max(0, quota - known()),
      resetSeconds: Math.max(1, Math.ceil((own.start + this.windowMs - Date.now()) / 1000)),
      allowed,
    });
    if (known() >= quota) {
      this.stale = true;
      return answer(false);
    }
    own.n++;
    this.dirty = true;
    if (own.n - own.written <= localAllowance(quota, this.config.RATE_LIMIT_LOCAL_SHARE) || !this.healthy)
      return answer(true);
    // The allowance is used: publish this hit with the others and read what the rest counted.
    // When the database fails the instance goes on alone: the hit is judged on what it knows.
    await this.sync();
    if (known() <= quota) return answer(true);
    // Refused: the hit was published with the others and is withdrawn at the next tick.
    own.n--;
    this.dirty = true;
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
    const now = Date.now();
    for (const [id, count] of this.own) if (count.start + this.windowMs <= now) this.own.delete(id);
    const snapshot = [...this.own].map(([id, count]) => ({ id, count, n: count.n }));
    this.dirty = false;
    this.stale = false;
    try {
      await this.collection.updateOne(
        { _id: this.instance },
        {
          $set: {
            counts: snapshot.map(({ id, count, n }) => {
              const at = id.indexOf(':');
              return { p: id.slice(0, at) as RateLimitPolicy, k: id.slice(at + 1), n, s: new Date(count.start) };
            }),
            // Kept a window past the last write, so a clock a little ahead cannot drop a live count.
            [RATE_LIMIT_EXPIRY_FIELD]: new Date(now + 2 * this.windowMs),
          },
        },
        { upsert: true },
      );
      for (const { count, n } of snapshot) count.written = n;
      const others = new Map<string, { n: number; start: number }[]>();
      const live = { [RATE_LIMIT_EXPIRY_FIELD]: { $gt: new Date(now) } };
      for (const doc of await this.collection.find(live).toArray()) {
        if (doc._id === this.instance) continue;
        for (const { p, k, n, s } of doc.counts) {
          if (s.getTime() + this.windowMs <= now) continue;
          const id = `${p}:${k}`;
          others.set(id, [...(others.get(id) ?? []), { n, start: s.getTime() }]);
        }
      }
      this.others = others;
      this.healthy = true;
      return true;
    } catch (error) {
      this.dirty = true;
      if (this.healthy) this.logger?.warn({ err: error }, 'rate-limit counts not synced; counting in memory');
      this.healthy = false;
      return false;
    }
  }

  /** The other instances' hits of `id` in windows still open at `now`. */
  private othersOf(id: string, now: number): number {
    let sum = 0;
    for (const { n, start } of this.others.get(id) ?? []) if (start + this.windowMs > now) sum += n;
    return sum;
  }

  /** This instance's count of `id`; a new window starts where another instance's open one did, or now. */
  private ownCount(id: string, now: number): OwnCount {
    const current = this.own.get(id);
    if (current && current.start + this.windowMs > now) return current;
    const open = (this.others.get(id) ?? []).map((o) => o.start).filter((start) => start + this.windowMs > now);
    const fresh = { start: open.length ? Math.min(...open) : now, n: 0, written: 0 };
    this.own.set(id, fresh);
    return fresh;
  }
}
