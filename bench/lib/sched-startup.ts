import { connectDb } from '../../src/db/index.js';
import { parseEnv } from '../../src/env.js';
import { createLogger } from '../../src/lib/logger.js';
import { openScheduler } from '../../src/scheduler/index.js';
import type { ReconcileResult } from '../../src/scheduler/reconcile.js';
import type { BenchDb, SchedBench } from './sched-bench.js';
import { seedJobs } from './seed.js';

const CONFIG = parseEnv({ LOG_LEVEL: 'silent', CRON_ALLOW_SECONDS: 'true', MONGODB_SOCKET_TIMEOUT_MS: '300000' });

/**
 * restart: every job is scheduled already (reconcile should change nothing). fresh: none is
 * (an import without next fires: it schedules them all). fresh-tail: all but the last few are,
 * which gives the cost of scheduling one job when the collections are full.
 */
export type ReconcileKind = 'restart' | 'fresh' | 'fresh-tail';

export interface ReconcileTiming {
  n: number;
  kind: ReconcileKind;
  /** Jobs stored without a next fire, for reconcile to schedule. */
  missing: number;
  /** Time of reconcile(), ms; when it did not finish, the time until it was stopped. */
  ms: number;
  finished: boolean;
  /** What reconcile reported (when it finished). */
  result?: ReconcileResult;
  /** Jobs reconcile scheduled before it finished or was stopped. */
  created: number;
  /** Jobs synced per second (fresh kinds). */
  perSecond?: number;
}

/** Jobs left without a fire job in the fresh-tail case. */
const tailOf = (n: number) => Math.max(10, Math.round(n / 20));

/**
 * Reconcile of N stored jobs as the worker runs it at boot, timed in this process on a
 * connection of its own, after openScheduler's index creation. A fresh import syncs job by job
 * and may take far longer than the benchmark: it is stopped at `deadlineMs` by closing that
 * connection, and its rate so far is kept.
 */
export async function reconcileCase(
  bench: SchedBench,
  n: number,
  kind: ReconcileKind,
  deadlineMs: number,
): Promise<ReconcileTiming> {
  await bench.settle();
  const db = await bench.database(`${kind}_${n}`);
  try {
    const missing = kind === 'restart' ? 0 : kind === 'fresh' ? n : tailOf(n);
    const cron = (i: number) => `${i % 60} * * * *`;
    await seedJobs(db.conn, n - missing, { cron, owners: Math.ceil(n / 50) });
    if (missing)
      await seedJobs(db.conn, missing, {
        cron,
        owners: Math.ceil(missing / 50),
        ownerPrefix: 'unscheduled-',
        schedule: false,
      });
    return { n, kind, missing, ...(await timeReconcile(db, n - missing, deadlineMs)) };
  } finally {
    await db.drop();
  }
}

async function timeReconcile(db: BenchDb, existing: number, deadlineMs: number) {
  const conn = await connectDb(db.uri, CONFIG);
  let result: ReconcileResult | undefined;
  const scheduler = await openScheduler(conn, CONFIG, createLogger(CONFIG));
  const started = performance.now();
  const reconciling = scheduler.reconcile().then((r) => {
    result = r;
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([reconciling.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, deadlineMs)))]);
  clearTimeout(timer);
  const ms = performance.now() - started;
  // Unfinished: closing the connection fails its next command, which ends it.
  await conn.close(true);
  await reconciling.catch(() => undefined);
  // Scheduled: enabled jobs with a next fire, which the dispatcher goes by.
  const created = (await db.conn.collection('cron_jobs').countDocuments({ nextRunAt: { $ne: null } })) - existing;
  return {
    ms,
    finished: result !== undefined,
    ...(result ? { result } : {}),
    created,
    ...(created > 0 ? { perSecond: created / (ms / 1000) } : {}),
  };
}

/**
 * The time a fresh import of N jobs takes: measured when it finished, else estimated from the
 * sync rate at its start (empty agendaJobs) and, when measured, at its end (full collections),
 * taking the cost of one sync to grow linearly in between (each sync scans agendaJobs).
 */
export function freshImportMs(timings: ReconcileTiming[], n: number): { ms: number; estimated: boolean } | undefined {
  const fresh = timings.find((t) => t.n === n && t.kind === 'fresh');
  if (!fresh) return undefined;
  if (fresh.finished) return { ms: fresh.ms, estimated: false };
  const tail = timings.find((t) => t.n === n && t.kind === 'fresh-tail');
  const secondsPerJob = [fresh, tail].filter((t) => t?.perSecond).map((t) => 1 / t!.perSecond!);
  if (!secondsPerJob.length) return { ms: Number.POSITIVE_INFINITY, estimated: true };
  return { ms: (n * 1000 * secondsPerJob.reduce((a, b) => a + b, 0)) / secondsPerJob.length, estimated: true };
}
