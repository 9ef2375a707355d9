import { MongoClient } from 'mongodb';
const c = new MongoClient(process.argv[2]!);
const runs = await c.db().collection('cron_job_runs').find({}, { projection: { scheduledFor: 1, createdAt: 1, startedAt: 1, status: 1 } }).toArray();
const lag = runs.filter((r) => r.startedAt).map((r) => r.startedAt.getTime() - r.scheduledFor.getTime()).sort((a, b) => a - b);
const q = (p: number) => lag[Math.min(lag.length - 1, Math.floor(p * lag.length))];
const by: Record<string, number> = {};
for (const r of runs) by[r.status] = (by[r.status] ?? 0) + 1;
console.log({ runs: runs.length, started: lag.length, p50: q(0.5), p99: q(0.99), max: lag.at(-1), by });
await c.close();
