import type { Types } from 'mongoose';
import { slotsBetween } from '../../src/scheduler/cron.js';
import { type BenchDb, type OurWorker, PROCESS_EVERY_MS, type SchedBench, startOurWorker } from './sched-bench.js';
import type { CommandTotals } from './sched-monitor.js';
import { seedJobs } from './seed.js';
import { summary } from './stats.js';
import { cpuSeconds } from './worker-process.js';

/** A step passes when every slot in its window started, none was missed, and p99 is under this. */
export const PASS_P99_MS = 1000;

export interface CapacityStep {
  workers: number;
  jobs: number;
  offeredPerMin: number;
  /** Slots of the window started by the end of the window plus a second, per minute. */
  achievedPerMin: number;
  p50Ms: number;
  p99Ms: number;
  notStarted: number;
  missed: number;
  pass: boolean;
  /** CPU cores in use on average during the window: FerretDB, and the workers together. */
  dbCores: number;
  workerCores: number;
  /** Agenda's lock queries (findAndModify on agendaJobs) of all workers in the window, and their mean time. */
  lockQueries: number;
  lockQueryMeanMs: number;
}

export interface RampOptions {
  workers: number;
  /** Stored jobs at each step; each fires every 10 s, so a step offers 6 x jobs fires a minute. */
  steps: number[];
  windowMs: number;
  tag: string;
}

/** Fires every 10 s, job i at second i mod 10 of each ten: the load is even over the window. */
const cronOf = (i: number) => `${i % 10}/10 * * * * *`;

/**
 * Capacity of one or two worker processes: jobs are added step by step while the workers run,
 * and each step's window measures the lag of every slot in it. The first step's jobs are seeded
 * before boot. Each window opens once the workers have polled since its jobs were added (Agenda
 * sees new jobs at its next poll), which also keeps a fresh process's first fires (modules and
 * connections still warming up) out of the first window. The ramp stops at the first failing step.
 */
export async function capacityRamp(
  bench: SchedBench,
  o: RampOptions,
  log: (m: string) => void,
): Promise<CapacityStep[]> {
  await bench.settle();
  const db = await bench.database(`cap_${o.tag}`);
  const jobs: { id: string; cron: string }[] = [];
  const add = async (count: number) => {
    const base = jobs.length;
    const ids = await seedJobs(db.conn, count, {
      cron: (i) => cronOf(base + i),
      owners: Math.ceil(count / 50),
      ownerPrefix: `cap-${base}-`,
    });
    for (const [i, id] of ids.entries()) jobs.push({ id, cron: cronOf(base + i) });
  };
  const workers: OurWorker[] = [];
  try {
    await add(o.steps[0]!);
    workers.push(
      ...(await Promise.all(
        Array.from({ length: o.workers }, (_, k) => startOurWorker(bench, db.uri, `cap-${o.tag}-${k + 1}`, 60_000)),
      )),
    );
    const steps: CapacityStep[] = [];
    for (const [k, total] of o.steps.entries()) {
      if (k > 0) await add(total - jobs.length);
      const opensAt = Date.now() + PROCESS_EVERY_MS + 1000;
      const step = await measureWindow(bench, db, workers, jobs, Math.ceil(opensAt / 1000) * 1000, o.windowMs);
      steps.push(step);
      log(
        `capacity ${o.tag}: ${total} jobs, ${step.offeredPerMin}/min offered, ${Math.round(step.achievedPerMin)}/min achieved, p99 ${Math.round(step.p99Ms)} ms, ${step.pass ? 'pass' : 'FAIL'}`,
      );
      if (!step.pass) break;
    }
    return steps;
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await db.drop();
  }
}

async function measureWindow(
  bench: SchedBench,
  db: BenchDb,
  workers: OurWorker[],
  jobs: { id: string; cron: string }[],
  from: number,
  windowMs: number,
): Promise<CapacityStep> {
  const until = from + windowMs;
  await sleepUntil(from);
  await Promise.all(workers.map((w) => w.commands()));
  const cpu0 = { db: cpuSeconds(bench.dbPid), workers: sum(workers.map((w) => w.cpuSeconds())) };
  await sleepUntil(until);
  const cpu1 = { db: cpuSeconds(bench.dbPid), workers: sum(workers.map((w) => w.cpuSeconds())) };
  const commands = await Promise.all(workers.map((w) => w.commands()));
  // A slot at the very end of the window that starts within the pass limit has started by now.
  await sleepUntil(until + PASS_P99_MS);
  const readAt = Date.now();
  const runs = await db.conn
    .collection('cron_job_runs')
    .find(
      { scheduledFor: { $gte: new Date(from), $lt: new Date(until) } },
      { projection: { jobId: 1, scheduledFor: 1, startedAt: 1, status: 1 } },
    )
    .toArray();
  const started = new Map<string, number>();
  let missed = 0;
  for (const run of runs) {
    const key = `${String(run.jobId as Types.ObjectId)} ${(run.scheduledFor as Date).getTime()}`;
    if (run.status === 'missed') missed++;
    const at = (run.startedAt as Date | null)?.getTime();
    if (at !== undefined && at <= readAt) started.set(key, Math.min(started.get(key) ?? Infinity, at));
  }
  const lags: number[] = [];
  let notStarted = 0;
  for (const job of jobs) {
    for (const slot of slotsBetween(job.cron, 'UTC', new Date(from - 1), new Date(until - 1), 1000)) {
      const at = started.get(`${job.id} ${slot.getTime()}`);
      if (at === undefined) notStarted++;
      lags.push((at ?? readAt) - slot.getTime());
    }
  }
  const s = summary(lags);
  const minutes = windowMs / 60_000;
  const locks = lockQueries(commands);
  return {
    workers: workers.length,
    jobs: jobs.length,
    offeredPerMin: Math.round(lags.length / minutes),
    achievedPerMin: (lags.length - notStarted) / minutes,
    p50Ms: s.p50,
    p99Ms: s.p99,
    notStarted,
    missed,
    pass: s.p99 < PASS_P99_MS && notStarted === 0 && missed === 0,
    dbCores: (cpu1.db - cpu0.db) / (windowMs / 1000),
    workerCores: (cpu1.workers - cpu0.workers) / (windowMs / 1000),
    ...locks,
  };
}

function lockQueries(commands: CommandTotals[]) {
  const locks = commands.map((c) => c['findAndModify agendaJobs'] ?? { count: 0, ms: 0 });
  const count = sum(locks.map((l) => l.count));
  return { lockQueries: count, lockQueryMeanMs: count ? sum(locks.map((l) => l.ms)) / count : 0 };
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
