// npx tsx bench/rate-limit-counting.ts [MONGODB_URI]: how many of N parallel requests on one key
// the shared (database) rate-limit counter records. Exact on MongoDB; on FerretDB 1.x, whose
// findAndModify reads then writes, concurrent increments overwrite each other. Starts a local
// FerretDB when no URI is given.
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { RateLimiterMongo } from 'rate-limiter-flexible';
import { connectDb, startLocalDb } from '../src/db/index.js';
import { RateLimits } from '../src/lib/rate-limit.js';

const uri = process.argv[2];
const dataDir = `.local/bench-db-${process.pid}`;
const local = uri ? undefined : await startLocalDb(dataDir);
const conn = await connectDb(
  uri ?? local!.uri,
  { MONGODB_SERVER_SELECTION_TIMEOUT_MS: 5000, MONGODB_SOCKET_TIMEOUT_MS: 10_000 },
  `bench_${randomUUID().slice(0, 8)}`,
);
try {
  for (const n of [10, 50, 200]) {
    const table = `bench_${n}`;
    await conn.collection(table).createIndex({ key: 1 }, { unique: true });
    const shared = new RateLimiterMongo({
      storeClient: conn,
      tableName: table,
      points: 1_000_000,
      duration: 60,
      disableIndexesCreation: true,
    });
    await Promise.all(Array.from({ length: n }, () => shared.consume('k')));
    const doc = await conn.collection(table).findOne({});
    process.stdout.write(`database counter: ${n} parallel consumes recorded as ${doc?.points}\n`);
  }
  // What the API does: each instance's own count, published with $set on a document of its own.
  const limits = new RateLimits(conn, {
    RATE_LIMIT_WINDOW_SECONDS: 60,
    RATE_LIMIT_PER_USER: 10,
    RATE_LIMIT_PER_IP: 0,
    RATE_LIMIT_RUN_NOW_PER_USER: 0,
    RATE_LIMIT_SYNC_MS: 1000,
    RATE_LIMIT_LOCAL_SHARE: 0,
  });
  await limits.ensureIndexes();
  const outcomes = await Promise.all(Array.from({ length: 50 }, () => limits.consume('user', 'k')));
  process.stdout.write(
    `API limiter, quota 10: ${outcomes.filter((o) => o!.allowed).length} of 50 parallel requests allowed\n`,
  );
  limits.stop();
} finally {
  await conn.dropDatabase();
  await conn.close();
  await local?.stop();
  if (local) await rm(dataDir, { recursive: true, force: true });
}
