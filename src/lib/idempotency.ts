import { createHash } from 'node:crypto';
import type { Connection } from 'mongoose';
import { isDuplicateKey } from '../db/index.js';
import type { Env } from '../env.js';
import { type Expiring, ensureExpiryIndex } from './expiry.js';

export const IDEMPOTENCY_COLLECTION = 'idempotency_keys';

/**
 * How long a request may hold its key before another request with the key may take over: a
 * process that died mid-request must not block the key until it expires. Well above the time a
 * request can take (database timeouts included).
 */
const IN_FLIGHT_LEASE_MS = 120_000;

/** The parts of a response that are replayed. */
export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

interface KeyRecord {
  _id: string;
  ownerId: string;
  key: string;
  fingerprint: string;
  state: 'in-flight' | 'done';
  lockedUntil: Date;
  response: StoredResponse | null;
  createdAt: Date;
  expiresAt: Date;
}

export type Claim =
  | { kind: 'new'; id: string }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'in-flight' }
  | { kind: 'mismatch' };

/** A fingerprint of the request a key was first used for: operation, target and body. */
export const requestFingerprint = (method: string, path: string, body: string) =>
  createHash('sha256').update(`${method} ${path}\n${body}`).digest('base64url');

/**
 * Idempotency keys (draft-ietf-httpapi-idempotency-key-header), per owner, in the database so
 * every API instance sees them. Claiming a key is an insert under a unique _id, which is atomic
 * on every server; the rest (finish, take over an abandoned or expired key) are single writes
 * on that _id.
 */
export class IdempotencyStore {
  private readonly collection;

  constructor(
    conn: Connection,
    private readonly config: Pick<Env, 'IDEMPOTENCY_KEY_TTL_HOURS'>,
  ) {
    this.collection = conn.collection<KeyRecord>(IDEMPOTENCY_COLLECTION);
  }

  /** For the expiry sweeper, where the database has no TTL indexes. */
  get expiring(): Expiring {
    return { collection: this.collection, field: 'expiresAt' };
  }

  async ensureIndexes(): Promise<boolean> {
    return ensureExpiryIndex(this.collection, 'expiresAt');
  }

  /** Claims `key` for a new request, or says what became of the request that first used it. */
  async claim(ownerId: string, key: string, fingerprint: string): Promise<Claim> {
    const id = createHash('sha256').update(`${ownerId}\n${key}`).digest('base64url');
    // A few rounds at most: each one either claims, answers, or removes a dead record.
    for (let round = 0; round < 5; round++) {
      const now = new Date();
      try {
        await this.collection.insertOne({
          _id: id,
          ownerId,
          key,
          fingerprint,
          state: 'in-flight',
          lockedUntil: new Date(now.getTime() + IN_FLIGHT_LEASE_MS),
          response: null,
          createdAt: now,
          expiresAt: new Date(now.getTime() + this.config.IDEMPOTENCY_KEY_TTL_HOURS * 3_600_000),
        });
        return { kind: 'new', id };
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
      }
      const existing = await this.collection.findOne({ _id: id });
      if (!existing) continue;
      // Expired but not yet swept, or in flight on a process that is gone: start afresh.
      if (existing.expiresAt <= now || (existing.state === 'in-flight' && existing.lockedUntil <= now)) {
        await this.collection.deleteOne({ _id: id, createdAt: existing.createdAt });
        continue;
      }
      if (existing.fingerprint !== fingerprint) return { kind: 'mismatch' };
      if (existing.state === 'done' && existing.response) return { kind: 'replay', response: existing.response };
      return { kind: 'in-flight' };
    }
    return { kind: 'in-flight' };
  }

  /** Stores the response to replay for the key. */
  async finish(id: string, response: StoredResponse): Promise<void> {
    await this.collection.updateOne({ _id: id }, { $set: { state: 'done', response } });
  }

  /** Frees the key (the request failed in a way worth retrying with the same key). */
  async release(id: string): Promise<void> {
    await this.collection.deleteOne({ _id: id });
  }
}
