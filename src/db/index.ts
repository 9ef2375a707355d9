import mongoose, { type Connection } from 'mongoose';
import type { Env } from '../env.js';
import { countDbError } from './metrics.js';

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
  return conn;
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

/**
 * True for a unique-index violation. MongoDB and FerretDB inserts report code 11000; a
 * FerretDB 1.x update that collides reports code 1 (InternalError) with SQLite's message.
 */
export function isDuplicateKey(error: unknown): boolean {
  const e = error as { code?: number; message?: string };
  return e?.code === 11000 || (e?.code === 1 && /UNIQUE constraint failed/.test(e.message ?? ''));
}
