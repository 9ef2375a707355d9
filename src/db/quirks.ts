/**
 * What the service designs around, written once. The service runs on real MongoDB (MONGODB_URI)
 * or on the local database the project starts itself: FerretDB 1.24.2 (the MongoDB wire
 * protocol) over PostgreSQL, or over SQLite with `LOCAL_DB=sqlite`. Facts checked in FerretDB
 * 1.24.2's source and measured (docs/database.md, bench/NOTES.md):
 *
 * - findAndModify and update/delete with a filter are a SELECT followed by a write by _id on
 *   both FerretDB backends, not one atomic step: two processes racing for the same document can
 *   both "win" (34-64 of 100 documents claimed twice in a probe), concurrent $inc lose updates.
 *   So whatever must happen once is decided by inserting under a unique index, which FerretDB
 *   does enforce (claims, idempotency keys, the fire slots); conditional updates are only ever
 *   compare-and-set guards whose lost race is harmless.
 * - A unique-index violation is code 11000 on MongoDB and on a FerretDB insert; a FerretDB update
 *   that collides answers code 1 (InternalError) with the backend's own text: SQLite's "UNIQUE
 *   constraint failed", PostgreSQL's "duplicate key value violates unique constraint …
 *   (SQLSTATE 23505)". `isDuplicateKey` knows all three.
 * - No TTL indexes (createIndex with expireAfterSeconds answers code 238), so expired records are
 *   swept by the service where `ttlIndexes` is false.
 * - A bulkWrite of many conditional updates never settled on FerretDB 1.24.2: such updates go
 *   one by one, a few in flight.
 * - Creating a collection or an index takes FerretDB's registry lock while PostgreSQL runs the
 *   DDL, even for an index that exists (its metadata is rewritten); with writes in flight this
 *   was seen to stall every client for about its socket timeout (10 s), at the first insert into
 *   a collection made lazily. So every collection and index is created at start-up, and only
 *   those missing (`createMissingIndexes`, `ensureIndexes`).
 * - On PostgreSQL, findAndModify holds a pooled connection while it takes a second one: as many
 *   findAndModify at once as the pool has connections (50 by default) wait on each other for
 *   ever, and every client of that FerretDB with them. Seen with 48 (Agenda's lock queries and run
 *   claims of a busy worker); the local server's pool is 180 (src/db/postgres.ts).
 * - No change streams: workers learn of new work by polling (Agenda's processEvery), not by
 *   watching collections.
 * - Only equality filters reach SQL; ranges, sorts and limits are applied in FerretDB over what
 *   the equality filters select. On SQLite every filter but _id reads the whole collection; on
 *   PostgreSQL equality filters run in SQL (a scan in C, ~10x faster at 10 000 documents).
 * - SQLite takes one writer at a time: a write waiting past its busy timeout fails with
 *   "database is locked" (SQLITE_BUSY) — an overload, answered like an unreachable database.
 *
 * Against MongoDB the straight path is taken where it is simpler (a TTL index instead of the
 * sweeper); designs that are correct on both (claims by insert) are kept on both.
 */

/** Which server answers: detected once at connect (FerretDB's buildInfo names itself). */
export type ServerKind = 'mongodb' | 'ferretdb';

export interface Capabilities {
  /** findAndModify / update-with-filter read and write in one atomic step. */
  atomicConditionalUpdate: boolean;
  /** createIndex with expireAfterSeconds deletes expired documents. */
  ttlIndexes: boolean;
  /** bulkWrite of many conditional updates is answered (and faster than one by one). */
  bulkConditionalUpdates: boolean;
  /** collection.watch() works. */
  changeStreams: boolean;
  /**
   * A range, sort or limit is answered from an index; where false, a query reads every document its
   * equality filters select (all of them without one) whatever its limit, so few large batches cost
   * less than many small ones (src/scheduler/retention.ts).
   */
  indexedRanges: boolean;
}

export const CAPABILITIES: Record<ServerKind, Capabilities> = {
  mongodb: {
    atomicConditionalUpdate: true,
    ttlIndexes: true,
    bulkConditionalUpdates: true,
    changeStreams: true,
    indexedRanges: true,
  },
  ferretdb: {
    atomicConditionalUpdate: false,
    ttlIndexes: false,
    bulkConditionalUpdates: false,
    changeStreams: false,
    indexedRanges: false,
  },
};

/** Unique-index violations: MongoDB / FerretDB inserts, then FerretDB updates on SQLite and on PostgreSQL. */
const DUPLICATE_KEY_TEXT = /UNIQUE constraint failed|duplicate key value violates unique constraint|SQLSTATE 23505/;

/** True for a unique-index violation, whichever server reported it (see the list above). */
export function isDuplicateKey(error: unknown): boolean {
  const e = error as { code?: number; message?: string };
  return e?.code === 11000 || (e?.code === 1 && DUPLICATE_KEY_TEXT.test(e.message ?? ''));
}

/** SQLite's one writer at a time: a write that waited past the busy timeout. Temporary. */
export function isOverloaded(error: Error): boolean {
  return /database is locked|SQLITE_BUSY/.test(error.message);
}

/** The local database's storage: PostgreSQL, the default (bench/NOTES.md has the comparison). */
export const LOCAL_BACKENDS = ['postgresql', 'sqlite'] as const;
export type LocalBackend = (typeof LOCAL_BACKENDS)[number];

/** `LOCAL_DB` from the environment: unset means PostgreSQL; an unknown name is an error. */
export function localBackendOf(env: NodeJS.ProcessEnv): LocalBackend {
  const name = env.LOCAL_DB || 'postgresql';
  if (!(LOCAL_BACKENDS as readonly string[]).includes(name))
    throw new Error(`LOCAL_DB must be one of ${LOCAL_BACKENDS.join(', ')} (got "${name}")`);
  return name as LocalBackend;
}
