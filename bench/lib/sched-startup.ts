import { parseEnv } from '../../src/env.js';
import { connectDb } from '../../src/lib/db.js';
import { createLogger } from '../../src/lib/logger.js';
import { FIRE_JOB, type ReconcileResult } from '../../src/scheduler/agenda-jobs.js';
import { AGENDA_COLLECTION } from '../../src/scheduler/agenda.js';
import { openScheduler } from '../../src/scheduler/index.js';
import { seedJobs } from './seed.js';
import type { BenchDb, SchedBench } from './sched-bench.js';

const CONFIG = parseEnv({ LOG_LEVEL: 'silent', CRON_ALLOW_SECONDS: 'true', MONGODB_SOCKET_TIMEOUT_MS: '300000' });

export interface ReconcileTiming {
  n: number;
  /** restart: every fire job exists already; fresh: none does (an import), all are created. */
  kind: 'restart' | 'fresh';
  /** Time of reconcile(), ms; when it did not finish, the time until it was stopped. */
  ms: number;
  finished: boolean;
  /** What reconcile reported (when it finished). */
  result?: ReconcileResult;
  /** Fire jobs that exist at the end (fresh: how far it came). */
  fireJobs: number;
  /** Fresh and unfinished: jobs synced per second so far, and the time all N would take at that rate. */
  perSecond?: number;
  extrapolatedMs?: number;
}

/**
 * Times `reconcile()` as the worker runs it at boot, in this process on a connection of its
 * own, after openScheduler's index creation. It is stopped at `deadlineMs` by closing that
 * connection (a fresh import syncs job by job and may take far longer than the benchmark).
 */
async function timeReconcile(db: BenchDb, n: number, kind: ReconcileTiming['kind'], deadlineMs: number): Promise<ReconcileTiming> {
  const conn = await connectDb(db.uri, CONFIG);
  let finished = false;
  let result: ReconcileResult | undefined;
  const scheduler = await openScheduler(conn, CONFIG, createLogger(CONFIG));
  const started = performance.now();
  const reconciling = scheduler.reconcile().then((r) => {
    finished = true;
    result = r;
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([reconciling.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, deadlineMs)))]);
  clearTimeout(timer);
  const ms = performance.now() - started;
  // Unfinished: closing the connection fails its next command, which ends it.
  await conn.close(true);
  await reconciling.catch(() => undefined);
  const fireJobs = await db.conn.collection(AGENDA_COLLECTION).countDocuments({ name: FIRE_JOB });
  const perSecond = !finished && kind === 'fresh' ? fireJobs / (ms / 1000) : undefined;
  return {
    n,
    kind,
    ms,
    finished,
    ...(result ? { result } : {}),
    fireJobs,
    ...(perSecond !== undefined ? { perSecond, extrapolatedMs: perSecond > 0 ? (n / perSecond) * 1000 : Number.POSITIVE_INFINITY } : {}),
  };
}

/**
 * Reconcile of N stored jobs: with their fire jobs (a restart, where it should find nothing to
 * change) or without (a fresh import, where it creates them all), bounded by the deadline.
 */
export async function reconcileCase(bench: SchedBench, n: number, kind: ReconcileTiming['kind'], deadlineMs: number): Promise<ReconcileTiming> {
  const db = await bench.database(`${kind}_${n}`);
  try {
    await seedJobs(db.conn, n, { cron: (i) => `${i % 60} * * * *`, owners: Math.ceil(n / 50), schedule: kind === 'restart' });
    return await timeReconcile(db, n, kind, deadlineMs);
  } finally {
    await db.drop();
  }
}
