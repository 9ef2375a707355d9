// Issue 12, point 2: the two local databases side by side in one run, FerretDB 1.24.2 over
// PostgreSQL 17 (the default, "ours") and over SQLite (the baseline): single queries on a
// collection of stored jobs, and separate processes writing at once (the PM2 layout of API and
// worker). The api and scheduling suites run on either with `npm run bench -- --local-db ...`.
// npx tsx bench/databases.ts [--quick] [--out file.json]
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Db, ObjectId } from 'mongodb';
import { connectDb, type LocalBackend, startLocalDb } from '../src/db/index.js';
import { isMain, suiteMain } from './lib/main.js';
import type { Comparison, Suite, SuiteOptions, SuiteResult } from './lib/report.js';
import { ownerOf, seedJobs } from './lib/seed.js';
import { compare, quantile } from './lib/stats.js';

const root = resolve(import.meta.dirname, '..');
const dataDir = (backend: LocalBackend) => `.local/bench-databases-${backend}`;

interface Plan {
  jobs: number;
  owners: number;
  /** Queries per probe row; the row's figure is their median. */
  queries: number;
  /** Writer processes, writes per process, writes in flight per process. */
  writers: number;
  writes: number;
  inFlight: number;
  rounds: number;
}
const FULL: Plan = { jobs: 10_000, owners: 250, queries: 30, writers: 2, writes: 300, inFlight: 32, rounds: 3 };
const QUICK: Plan = { jobs: 10_000, owners: 250, queries: 10, writers: 2, writes: 150, inFlight: 32, rounds: 1 };

type Job = { id: string; owner: string; name: string };

/** The single queries the API and the worker make most, each timed alone (median of `queries`). */
async function probe(db: Db, jobs: Job[], queries: number): Promise<Record<string, number>> {
  const col = db.collection('cron_jobs');
  const sample = Array.from({ length: queries }, (_, i) => jobs[(i * 7919) % jobs.length]!);
  const timed = async (run: (job: Job) => Promise<unknown>) => {
    const ms: number[] = [];
    for (const job of sample) {
      const started = performance.now();
      await run(job);
      ms.push(performance.now() - started);
    }
    return quantile(ms, 0.5);
  };
  return {
    'findOne {_id}': await timed((j) => col.findOne({ _id: new ObjectId(j.id) })),
    'findOne {_id, ownerId} (GET /jobs/{id})': await timed((j) =>
      col.findOne({ _id: new ObjectId(j.id), ownerId: j.owner }),
    ),
    'find {ownerId} sort _id limit 50 (GET /jobs)': await timed((j) =>
      col.find({ ownerId: j.owner }).sort({ _id: 1 }).limit(50).toArray(),
    ),
    'countDocuments {ownerId} (POST /jobs cap)': await timed((j) => col.countDocuments({ ownerId: j.owner })),
    'updateOne {ownerId, name}': await timed((j) =>
      col.updateOne({ ownerId: j.owner, name: j.name }, { $set: { note: 'x' } }),
    ),
    'updateOne {_id}': await timed((j) => col.updateOne({ _id: new ObjectId(j.id) }, { $set: { note: 'y' } })),
  };
}

/** `writers` processes of bench/lib/db-writer.ts at once; wall time of the slowest and p95 of all writes. */
async function writeAtOnce(uri: string, plan: Plan, round: number): Promise<{ ms: number; p95: number }> {
  const results = await Promise.all(
    Array.from({ length: plan.writers }, (_, w) => {
      const args = ['--import', 'tsx', 'bench/lib/db-writer.ts', uri, `w${round}-${w}`];
      const child = spawn(process.execPath, [...args, String(plan.writes), String(plan.inFlight)], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk));
      return new Promise<{ ms: number; latencies: number[] }>((ok, fail) =>
        child.once('exit', (code) => (code === 0 ? ok(JSON.parse(out)) : fail(new Error(`writer exit ${code}`)))),
      );
    }),
  );
  return {
    ms: Math.max(...results.map((r) => r.ms)),
    p95: quantile(
      results.flatMap((r) => r.latencies),
      0.95,
    ),
  };
}

interface Measured {
  probe: Record<string, number>[];
  wallMs: number[];
  p95Ms: number[];
  startMs: number;
}

async function measure(backend: LocalBackend, plan: Plan, log: SuiteOptions['log']): Promise<Measured> {
  await rm(dataDir(backend), { recursive: true, force: true });
  const started = performance.now();
  const local = await startLocalDb(dataDir(backend), undefined, { backend });
  const startMs = performance.now() - started;
  const conn = await connectDb(local.uri, {
    MONGODB_SERVER_SELECTION_TIMEOUT_MS: 5000,
    MONGODB_SOCKET_TIMEOUT_MS: 120_000,
  });
  try {
    log(`${backend}: started in ${Math.round(startMs)} ms; seeding ${plan.jobs} jobs`);
    const ids = await seedJobs(conn, plan.jobs, { cron: () => '0 0 * * * *', owners: plan.owners });
    const jobs = ids.map((id, i) => ({ id, owner: ownerOf(i, plan.owners), name: `bench job ${i}` }));
    const measured: Measured = { probe: [], wallMs: [], p95Ms: [], startMs };
    for (let round = 0; round < plan.rounds; round++) {
      measured.probe.push(await probe(conn.db!, jobs, plan.queries));
      const writes = await writeAtOnce(local.uri, plan, round);
      measured.wallMs.push(writes.ms);
      measured.p95Ms.push(writes.p95);
      log(`${backend}: round ${round + 1}: writers ${Math.round(writes.ms)} ms, p95 ${Math.round(writes.p95)} ms`);
    }
    return measured;
  } finally {
    await conn.close();
    await local.stop();
    await rm(dataDir(backend), { recursive: true, force: true });
  }
}

export const run: Suite = async ({ quick, log }: SuiteOptions): Promise<SuiteResult> => {
  const plan = quick ? QUICK : FULL;
  // The baseline first, then ours: each alone on the machine, one after the other.
  const sqlite = await measure('sqlite', plan, log);
  const postgresql = await measure('postgresql', plan, log);
  const comparisons: Comparison[] = Object.keys(sqlite.probe[0]!).map((query) =>
    compare(
      { metric: `${query}, ${plan.jobs} stored jobs, p50`, unit: 'ms', better: 'lower' },
      postgresql.probe.map((p) => p[query]!),
      sqlite.probe.map((p) => p[query]!),
    ),
  );
  const load = `${plan.writers} processes × ${plan.writes} mixed writes, ${plan.inFlight} in flight each`;
  comparisons.push(
    compare({ metric: `${load}: wall time`, unit: 'ms', better: 'lower' }, postgresql.wallMs, sqlite.wallMs),
    compare({ metric: `${load}: p95 of a write`, unit: 'ms', better: 'lower' }, postgresql.p95Ms, sqlite.p95Ms),
    compare(
      { metric: 'start (first start: creates the store)', unit: 'ms', better: 'lower' },
      [postgresql.startMs],
      [sqlite.startMs],
    ),
  );
  return {
    id: 'databases',
    title: 'Local database: FerretDB on PostgreSQL (ours) against FerretDB on SQLite (baseline)',
    method:
      `Both backends in this run, one after the other, each started fresh by \`startLocalDb\` with ${plan.jobs} ` +
      `seeded jobs over ${plan.owners} owners. Single queries through the driver, median of ${plan.queries} ` +
      `each; then ${load}, as separate node processes (bench/lib/db-writer.ts): inserts, updates by owner ` +
      'and name, findOneAndUpdate by _id. Ratio = PostgreSQL / SQLite (below 1: PostgreSQL is faster).',
    comparisons,
  };
};

if (isMain(import.meta.url)) await suiteMain(run);
