import type { Collection } from 'mongodb';
import type { Logger } from './logger.js';

/** What `sweepExpired` cleans: documents of `collection` whose `field` (a date) is past. */
export interface Expiring {
  collection: { deleteMany(filter: object): Promise<{ deletedCount: number }> };
  field: string;
}

/**
 * A TTL index on `field` (documents go once that date has passed), where the database has
 * them (ttlIndexes in src/db/quirks.ts); the others answer "Index option expireAfterSeconds is not
 * implemented yet" (code 238): then false, and `startExpirySweeper` deletes expired documents instead.
 */
export async function ensureExpiryIndex(
  collection: { createIndex: Collection['createIndex'] },
  field: string,
): Promise<boolean> {
  try {
    await collection.createIndex({ [field]: 1 }, { expireAfterSeconds: 0 });
    return true;
  } catch (error) {
    if ((error as { code?: number }).code === 238) return false;
    throw error;
  }
}

/** Deletes what has expired; returns how many documents went. */
export async function sweepExpired(targets: Expiring[], now = new Date()): Promise<number> {
  let deleted = 0;
  for (const { collection, field } of targets) {
    deleted += (await collection.deleteMany({ [field]: { $lte: now } })).deletedCount;
  }
  return deleted;
}

/** Sweeps every `intervalMs` (unref'd: it never keeps the process alive); returns a stop function. */
export function startExpirySweeper(targets: Expiring[], intervalMs: number, logger: Logger): () => void {
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    sweepExpired(targets)
      .then((deleted) => deleted && logger.debug({ deleted }, 'expired records swept'))
      .catch((error) => logger.warn({ err: error }, 'expiry sweep failed'))
      .finally(() => (sweeping = false));
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
