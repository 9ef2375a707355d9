/**
 * What a history-retention pass costs (src/scheduler/retention.ts): inserts JOBS jobs (100), of
 * which ACTIVE (all) ran just now and the others a day ago, and N runs of them (a tenth older
 * than RUNS_KEPT_DAYS, 2 in 3 succeeded), times the passes that cut them down to the limits,
 * then a pass with nothing to delete (the standing cost per HISTORY_SWEEP_INTERVAL_MS).
 * Not part of `npm run bench`: `npx tsx bench/retention-probe.ts MONGODB_URI [N] [JOBS] [ACTIVE]`
 * against a database of your own (it uses and drops the database `retention_probe`);
 * MONGODB_SOCKET_TIMEOUT_MS is read from the environment.
 */
import { Types } from 'mongoose';
import { connectDb } from '../src/db/index.js';
import { parseEnv } from '../src/env.js';
import { createLogger } from '../src/lib/logger.js';
import { ensureIndexes, models } from '../src/models/index.js';
import { sweepHistory } from '../src/scheduler/retention.js';

const [uri, count = '20000', jobCount = '100', activeCount = jobCount] = process.argv.slice(2);
if (!uri) throw new Error('usage: retention-probe.ts MONGODB_URI [N] [JOBS] [ACTIVE]');
const n = Number(count);
const active = Number(activeCount);
// The socket timeout may need raising on FerretDB, where one read of a large collection is long.
const config = parseEnv({ LOG_LEVEL: 'silent', MONGODB_SOCKET_TIMEOUT_MS: process.env.MONGODB_SOCKET_TIMEOUT_MS });
const conn = await connectDb(uri, config, 'retention_probe');
await conn.dropDatabase();
const m = models(conn);
await ensureIndexes(m);
const deps = { agenda: undefined as never, conn, models: m, config, logger: createLogger(config) };

const jobs = Array.from({ length: Number(jobCount) }, () => new Types.ObjectId());
const dayAgo = new Date(Date.now() - 86_400_000);
await m.CronJob.collection.insertMany(
  jobs.map((_id, i) => ({
    _id,
    ownerId: 'probe',
    name: `probe-${i}`,
    enabled: false,
    lastRunAt: i < active ? new Date() : dayAgo,
  })),
);
const started = Date.now();
for (let at = 0; at < n; at += 1000) {
  const docs = Array.from({ length: Math.min(1000, n - at) }, (_, k) => {
    const i = at + k;
    const old = i < n / 10;
    const when = new Date(Date.now() - (old ? 40 : 20) * 86_400_000 + i * 1000);
    const secs = Math.floor(when.getTime() / 1000).toString(16);
    return {
      _id: new Types.ObjectId(`${secs}${new Types.ObjectId().toHexString().slice(8)}`),
      jobId: jobs[i % jobs.length],
      ownerId: 'probe',
      type: 'generateReport',
      scheduledFor: when,
      trigger: 'schedule',
      status: i % 3 === 2 ? 'failed' : 'succeeded',
      finishedAt: when,
      attempts: 1,
    };
  });
  await m.Run.collection.insertMany(docs);
}
console.log(`inserted ${n} runs in ${Date.now() - started} ms`);
for (let pass = 1; ; pass++) {
  const r = await sweepHistory(deps);
  console.log(`pass ${pass}: ${r.ms} ms, deleted ${r.runsTooOld} by age, ${r.runsOverLimit} over the limits`);
  if (!r.cutShort) break;
}
const left = await m.Run.collection.countDocuments({});
const idle = await sweepHistory(deps);
console.log(`left ${left} runs; a pass with nothing to delete: ${idle.ms} ms`);
await conn.dropDatabase();
await conn.close();
