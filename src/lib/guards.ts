import type { Connection } from 'mongoose';
import type { Env } from '../env.js';
import { type Expiring, startExpirySweeper } from './expiry.js';
import { IdempotencyStore } from './idempotency.js';
import type { Logger } from './logger.js';
import { RATE_LIMIT_COLLECTION, RATE_LIMIT_EXPIRY_FIELD, RateLimits } from './rate-limit.js';

/** How often expired idempotency keys and rate-limit counters are deleted where TTL indexes are missing. */
const SWEEP_INTERVAL_MS = 10 * 60_000;

/** The API's abuse defences that keep state in the database: rate limits and idempotency keys. */
export interface Guards {
  rateLimits: RateLimits;
  idempotency: IdempotencyStore;
  /** Proxies whose X-Forwarded-For entry is trusted (TRUST_PROXY_HOPS). */
  trustProxyHops: number;
}

/**
 * Opens the guards on a connection: creates their indexes and, on a database without TTL
 * indexes (src/db/quirks.ts), starts a sweeper for what has expired. `stop()` ends the sweeper.
 */
export async function openGuards(conn: Connection, config: Env, logger: Logger): Promise<Guards & { stop(): void }> {
  const rateLimits = new RateLimits(conn, config, logger);
  const idempotency = new IdempotencyStore(conn, config);
  await rateLimits.ensureIndexes();
  const ttl = await idempotency.ensureIndexes();
  let stopSweeper = () => {};
  if (!ttl) {
    const targets: Expiring[] = [
      idempotency.expiring,
      { collection: conn.collection(RATE_LIMIT_COLLECTION), field: RATE_LIMIT_EXPIRY_FIELD },
    ];
    stopSweeper = startExpirySweeper(targets, SWEEP_INTERVAL_MS, logger);
  }
  const stop = () => {
    stopSweeper();
    rateLimits.stop();
  };
  return { rateLimits, idempotency, trustProxyHops: config.TRUST_PROXY_HOPS, stop };
}
