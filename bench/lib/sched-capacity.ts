import { loadavg } from 'node:os';
import type { Types } from 'mongoose';
import { slotsBetween } from '../../src/scheduler/cron.js';
import { commandSum, commandsPer, commandTotals } from './db-commands.js';
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
  /** Runs the window's slots created (fired), and database commands per such run in the window. */
  fired?: number;
  /**
   * Per fired run: commands the workers sent (driver monitoring in each worker), split into
   * Agenda's (agendaJobs) and ours (everything else: the dispatcher's reads, the fire, the run's
   * states and the job's marks); and every client's commands as FerretDB counted them.
   */
  perRun?: { ours: number; agenda: number; server: number };
  /** The machine's 1-minute load average at the end of the window (the machine is shared). */
  load?: number;
}

/** A job of a window and its cron, for the slots it should start. */
export interface MeasuredJob {
  id: string;
  cron: string;
}

/**
 * The start of a window: the workers have polled since now (Agenda sees new jobs at its next
 * poll), and a whole second.
 */
export async function openWindowAfterPoll(): Promise<number> {
  return Math.ceil((Date.now() + PROCESS_EVERY_MS + 1000) / 1000) * 1000;
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
      const step = await measureWindow(bench, db, workers, jobs, await openWindowAfterPoll(), o.windowMs);
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

/** One window of fires: the lag of every slot in it, the CPU and the database commands it took. */
export async function measureWindow(
  bench: SchedBench,
  db: BenchDb,
  workers: OurWorker[],
  jobs: MeasuredJob[],
  from: number,
  windowMs: number,
): Promise<CapacityStep> {
  const until = from + windowMs;
  await sleepUntil(from);
  await Promise.all(workers.map((w) => w.commands()));
  const server0 = await commandTotals(db.conn.db!);
  const cpu0 = { db: cpuSeconds(bench.dbPid), workers: sum(workers.map((w) => w.cpuSeconds())) };
  await sleepUntil(until);
  const cpu1 = { db: cpuSeconds(bench.dbPid), workers: sum(workers.map((w) => w.cpuSeconds())) };
  const [commands, server1] = await Promise.all([
    Promise.all(workers.map((w) => w.commands())),
    commandTotals(db.conn.db!),
  ]);
  // A slot at the very end of the window that starts within the pass limit has started by now.
  await sleepUntil(until + PASS_P99_MS);
  const readAt = Date.now();
  // Runs created in the window, whatever their slot: what the window's commands paid for.
  const fired = await db.conn
    .collection('cron_job_runs')
    .countDocuments({ createdAt: { $gte: new Date(from), $lt: new Date(until) }, status: { $ne: 'missed' } });
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
    fired,
    perRun: perRun(commands, commandSum(commandsPer(server0, server1, fired)), fired),
    load: loadavg()[0]!,
  };
}

/** Commands per fired run, ours and Agenda's (agendaJobs), from the workers' monitors. */
function perRun(commands: CommandTotals[], server: number, fired: number) {
  let agenda = 0;
  let ours = 0;
  for (const totals of commands)
    for (const [key, t] of Object.entries(totals)) {
      if (key.endsWith(' agendaJobs')) agenda += t.count;
      else ours += t.count;
    }
  const per = Math.max(1, fired);
  return { ours: ours / per, agenda: agenda / per, server };
}

function lockQueries(commands: CommandTotals[]) {
  const locks = commands.map((c) => c['findAndModify agendaJobs'] ?? { count: 0, ms: 0 });
  const count = sum(locks.map((l) => l.count));
  return { lockQueries: count, lockQueryMeanMs: count ? sum(locks.map((l) => l.ms)) / count : 0 };
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const sleepUntil = (at: number) => new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
