import type { Connection } from 'mongoose';
import { RateLimiterMemory, RateLimiterMongo, RateLimiterRes } from 'rate-limiter-flexible';
import type { Env } from '../env.js';
import { ensureExpiryIndex } from './expiry.js';

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

type Limiter = { consume(key: string): Promise<RateLimitOutcome> };

/** Collections the counters live in, one per policy (rate-limiter-flexible's tableName). */
export const rateLimitCollection = (policy: RateLimitPolicy) => `rate_limits_${policy.replace('-', '_')}`;

const quotaOf = (config: RateLimitConfig, policy: RateLimitPolicy) =>
  ({ ip: config.RATE_LIMIT_PER_IP, user: config.RATE_LIMIT_PER_USER, 'run-now': config.RATE_LIMIT_RUN_NOW_PER_USER })[
    policy
  ];

type RateLimitConfig = Pick<
  Env,
  'RATE_LIMIT_WINDOW_SECONDS' | 'RATE_LIMIT_PER_IP' | 'RATE_LIMIT_PER_USER' | 'RATE_LIMIT_RUN_NOW_PER_USER'
>;

/**
 * Counters shared by every API instance: rate-limiter-flexible's RateLimiterMongo on our own
 * connection, so the database that holds the jobs also holds the counts.
 *
 * Each shared limiter is paired with an in-process one of the same quota. On MongoDB the shared
 * count is exact (`$inc` in findAndModify is atomic). FerretDB 1.x runs findAndModify as a read
 * then a write, so concurrent requests overwrite each other's increments: measured
 * (bench/rate-limit-counting.ts), 50 parallel requests on one key were counted as 2 to 10. The
 * in-process counter is exact for the requests one instance receives, so a burst is still cut
 * at the quota per instance; only across several instances on FerretDB can a parallel burst get
 * more than the quota (at most instances x quota).
 */
export class RateLimits {
  private readonly limiters = new Map<RateLimitPolicy, Limiter>();

  constructor(
    private readonly conn: Connection,
    readonly config: RateLimitConfig,
  ) {
    for (const policy of RATE_LIMIT_POLICIES) {
      const quota = quotaOf(config, policy);
      if (quota > 0) this.limiters.set(policy, this.limiter(policy, quota));
    }
  }

  /** Whether the policy is on (its quota above 0). */
  enabled(policy: RateLimitPolicy): boolean {
    return this.limiters.has(policy);
  }

  /** Creates the counters' indexes: the unique key, and a TTL where the database has them. */
  async ensureIndexes(): Promise<void> {
    for (const policy of this.limiters.keys()) {
      const collection = this.conn.collection(rateLimitCollection(policy));
      await collection.createIndex({ key: 1 }, { unique: true });
      await ensureExpiryIndex(collection, 'expire');
    }
  }

  /** Counts one request against the policy for `key`; never throws for "over the limit". */
  async consume(policy: RateLimitPolicy, key: string): Promise<RateLimitOutcome | undefined> {
    return this.limiters.get(policy)?.consume(key);
  }

  private limiter(policy: RateLimitPolicy, quota: number): Limiter {
    const windowSeconds = this.config.RATE_LIMIT_WINDOW_SECONDS;
    const shared = new RateLimiterMongo({
      storeClient: this.conn,
      tableName: rateLimitCollection(policy),
      keyPrefix: policy,
      points: quota,
      duration: windowSeconds,
      // Its own index creation runs in the constructor and reports failures with console.error;
      // ensureIndexes() does it instead, at start-up, where a failure stops the process.
      disableIndexesCreation: true,
    });
    const local = new RateLimiterMemory({ keyPrefix: policy, points: quota, duration: windowSeconds });
    return {
      async consume(key) {
        // rate-limiter-flexible rejects with a RateLimiterRes when over the limit and with an
        // Error when the store fails; only the first is an answer, the second propagates (503).
        const settle = (p: Promise<RateLimiterRes>) =>
          p.then(
            (res) => ({ res, allowed: true }),
            (res: unknown) => {
              if (res instanceof RateLimiterRes) return { res, allowed: false };
              throw res;
            },
          );
        const [inProcess, inDatabase] = [await settle(local.consume(key)), await settle(shared.consume(key))];
        const remaining = Math.min(inProcess.res.remainingPoints, inDatabase.res.remainingPoints);
        const resetMs = Math.max(inProcess.allowed ? 0 : inProcess.res.msBeforeNext, inDatabase.res.msBeforeNext);
        return {
          policy,
          quota,
          windowSeconds,
          remaining,
          resetSeconds: Math.max(0, Math.ceil(resetMs / 1000)),
          allowed: inProcess.allowed && inDatabase.allowed,
        };
      },
    };
  }
}
