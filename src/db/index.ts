/**
 * The database, one module: the connection (here), the local server the project starts itself
 * (local-server.ts, postgres.ts) and what the service designs around on each server it may meet
 * (quirks.ts, where the reasons are written). Nothing else in src/ needs to know which server
 * answers: it asks `capabilitiesOf(conn)` or `isDuplicateKey(error)`.
 */
import mongoose, { type Connection } from 'mongoose';
import type { Env } from '../env.js';
import { countDbError } from '../lib/metrics.js';
import { CAPABILITIES, type Capabilities, type ServerKind } from './quirks.js';

export { freePort, type LocalDb, startLocalDb } from './local-server.js';
export { type Capabilities, isDuplicateKey, isOverloaded, type LocalBackend, type ServerKind } from './quirks.js';

/**
 * Opens a mongoose connection of its own (not the global one), so one process can hold
 * several, as the multi-worker tests do. Server selection is bounded so that a database
 * outage turns into a fast 503 rather than a request hanging for mongoose's 30 s default.
 */
export async function connectDb(
  uri: string,
  config: Pick<Env, 'MONGODB_SERVER_SELECTION_TIMEOUT_MS' | 'MONGODB_SOCKET_TIMEOUT_MS'>,
  dbName?: string,
): Promise<Connection> {
  const conn = mongoose.createConnection(uri, {
    ...(dbName ? { dbName } : {}),
    serverSelectionTimeoutMS: config.MONGODB_SERVER_SELECTION_TIMEOUT_MS,
    // Commands fail instead of queueing forever while the driver reconnects.
    bufferCommands: false,
    // A database that accepts connections but stops answering must not hang a request: a reply
    // (or a new connection's handshake) that takes longer fails, and the API answers 503. With
    // the driver's one read retry that is about three times this at worst. (Driver 7.8 ignores
    // the newer timeoutMS, so these per-stage timeouts are the bound.)
    socketTimeoutMS: config.MONGODB_SOCKET_TIMEOUT_MS,
    connectTimeoutMS: config.MONGODB_SOCKET_TIMEOUT_MS,
    autoIndex: false,
  });
  // The driver's heartbeats notice an unreachable server even when no request is made.
  conn.getClient().on('serverHeartbeatFailed', () => countDbError('heartbeat'));
  // Query selector injection: a filter value that is an object with `$` keys is wrapped in $eq,
  // so a value that slipped past validation can only ever be compared, never run as an operator.
  // Our own operators in model filters must be wrapped in mongoose.trusted() (see service.ts).
  conn.set('sanitizeFilter', true);
  await conn.asPromise();
  servers.set(conn, await detectServer(conn));
  return conn;
}

const servers = new WeakMap<Connection, ServerKind>();

/** FerretDB names itself in buildInfo (`ferretdbVersion`); anything else speaks as MongoDB. */
async function detectServer(conn: Connection): Promise<ServerKind> {
  const info = await conn.db!.admin().command({ buildInfo: 1 });
  return 'ferretdbVersion' in info ? 'ferretdb' : 'mongodb';
}

/** Which server a connection opened by `connectDb` talks to. */
export function serverKindOf(conn: Connection): ServerKind {
  const kind = servers.get(conn);
  if (!kind) throw new Error('not a connection opened by connectDb');
  return kind;
}

/** What the connection's server can be relied on for (see quirks.ts for each answer's reason). */
export function capabilitiesOf(conn: Connection): Capabilities {
  return CAPABILITIES[serverKindOf(conn)];
}

/** True when the database answers a ping within `timeoutMs`. */
export async function pingDb(conn: Connection, timeoutMs = 2000): Promise<boolean> {
  if (!conn.db) return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      conn.db
        .admin()
        .command({ ping: 1 })
        .then(() => true),
      new Promise<boolean>((ok) => (timer = setTimeout(() => ok(false), timeoutMs))),
    ]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** An index as createIndex takes it: its keys and its name. */
export interface IndexSpec {
  key: Record<string, 1 | -1>;
  name: string;
}

/** The names of a collection's indexes; none when the collection does not exist yet. */
export async function indexNames(collection: {
  listIndexes(): { toArray(): Promise<{ name?: string }[]> };
}): Promise<Set<string>> {
  try {
    return new Set((await collection.listIndexes().toArray()).map((index) => String(index.name)));
  } catch (error) {
    if ((error as { code?: number }).code === 26) return new Set(); // NamespaceNotFound
    throw error;
  }
}

/**
 * Creates those of `indexes` the collection lacks, by name. Asking again for indexes that exist
 * is not free: FerretDB takes its registry's exclusive lock for any createIndexes (every other
 * command waits), so a worker restarting would stall every client for a moment (src/db/quirks.ts).
 */
export async function createMissingIndexes(
  collection: Parameters<typeof indexNames>[0] & {
    createIndex(key: IndexSpec['key'], options: { name: string }): Promise<unknown>;
  },
  indexes: readonly IndexSpec[],
): Promise<void> {
  const existing = await indexNames(collection);
  for (const { key, name } of indexes) if (!existing.has(name)) await collection.createIndex(key, { name });
}

/**
 * Creates those of the named collections that do not exist, before any traffic: FerretDB creates
 * a collection on its first insert otherwise, and that can stall every client (src/db/quirks.ts).
 */
export async function createMissingCollections(conn: Connection, names: readonly string[]): Promise<void> {
  const db = conn.db!;
  const existing = new Set((await db.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name));
  for (const name of names) {
    if (existing.has(name)) continue;
    await db.createCollection(name).catch((error: { code?: number }) => {
      if (error.code !== 48) throw error; // NamespaceExists: another process made it meanwhile
    });
  }
}
