import { loadavg } from 'node:os';
import type { Connection, Types } from 'mongoose';
import { freePort } from '../../src/db/index.js';
import { slotsBetween } from '../../src/scheduler/cron.js';
import { type OurWorker, type SchedBench, startOurWorker } from './sched-bench.js';
import { seedJobs } from './seed.js';
import { quantile } from './stats.js';

export interface FailoverOptions {
  workers: number;
  /** Jobs firing every second while the workers run. */
  jobs: number;
  /** Steady firing before the kill, and after the first fire that follows it, ms. */
  steadyMs: number;
  /** The case stops this long after the kill should no other worker fire. */
  deadlineMs: number;
  tag: string;
}

/** One kill of the worker that fires the schedules. */
export interface FailoverRound {
  workers: number;
  jobs: number;
  /**
   * How the killed worker was found: `probe` when the workers' /healthz said which holds the most
   * firing partitions, `guess` when none answered within the wait (the first worker was killed).
   */
  found: 'probe' | 'guess';
  /**
   * Kill to the moment every job the killed worker had fired was fired again by another (the
   * longest of those waits), ms; undefined if one was not by the deadline.
   */
  firstFireMs?: number;
  /** Kill to the survivors' /healthz reporting every partition held again, ms. */
  takeoverMs?: number;
  /** Slots of every job from the kill to the end: how they were accounted for. */
  slots: number;
  /** Slots with no run at all (lost), with a run recorded missed, with more than one run (doubled). */
  lost: number;
  missed: number;
  doubled: number;
  /** Catch-up runs recorded in that span (the misfire policy covering the gap). */
  catchup: number;
  /** Lag (slot to run started) of the slots in that span that started, ms. */
  lagP99Ms: number;
  /** `uptime`'s load average when the kill happened. */
  load: number;
  deadlineMs: number;
}

const cronEverySecond = () => '* * * * * *';

/** The workers run with the default SCHEDULER_PARTITIONS. */
const DEFAULT_PARTITIONS = 16;

/** Partitions each worker holds, from its probe's /healthz (partitionsHeld); undefined when it does not answer. */
async function partitionsHeld(ports: number[]): Promise<(number | undefined)[]> {
  return Promise.all(
    ports.map(async (port) => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
        const body = (await res.json()) as { partitionsHeld?: unknown };
        return typeof body.partitionsHeld === 'number' ? body.partitionsHeld : undefined;
      } catch {
        return undefined; // killed, or busy past the timeout
      }
    }),
  );
}

/** The worker holding the most firing partitions, once every worker answers. */
async function holder(ports: number[]): Promise<number | undefined> {
  const held = await partitionsHeld(ports);
  if (held.some((n) => n === undefined)) return undefined;
  const most = Math.max(...(held as number[]));
  return most > 0 ? held.indexOf(most) : undefined;
}

/** Whether the workers behind `ports` hold `partitions` between them. */
async function allHeld(ports: number[], partitions: number): Promise<boolean> {
  const held = await partitionsHeld(ports);
  return held.reduce<number>((sum, n) => sum + (n ?? 0), 0) >= partitions;
}

async function pollFor<T>(deadlineAt: number, probe: () => Promise<T | undefined>, everyMs = 100) {
  while (Date.now() < deadlineAt) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return undefined;
}

/**
 * Failover: N workers with the service's default settings fire `jobs` jobs every second; the one
 * holding the dispatcher (its probe says so) is killed with SIGKILL, and the case times how long
 * until a run is created again (the killed worker can create none, so another worker fired it)
 * and until another worker reports holding the dispatcher, then accounts for every slot from
 * the kill on: lost, missed, doubled, or caught up.
 */
export async function failoverRound(
  bench: SchedBench,
  o: FailoverOptions,
  log: (m: string) => void,
): Promise<FailoverRound> {
  await bench.settle();
  const db = await bench.database(`failover_${o.tag}`);
  const workers: OurWorker[] = [];
  try {
    const ids = await seedJobs(db.conn, o.jobs, { cron: cronEverySecond, owners: 1, ownerPrefix: 'failover-' });
    const ports = await Promise.all(Array.from({ length: o.workers }, () => freePort()));
    // One after the other, as an operator's rollout starts them.
    for (const [k, port] of ports.entries())
      workers.push(
        await startOurWorker(bench, db.uri, `failover-${o.tag}-${k + 1}`, 60_000, {
          WORKER_METRICS_PORT: String(port),
        }),
      );
    log(`failover ${o.tag}: ${o.workers} workers started`);
    const runs = db.conn.collection('cron_job_runs');
    const firstRunAfter = (at: number) =>
      runs.findOne({ createdAt: { $gt: new Date(at) } }, { sort: { createdAt: 1 }, projection: { createdAt: 1 } });
    // Firing first, then steady for a while, so the kill does not land in the start-up.
    const firing = await pollFor(Date.now() + 30_000, async () => (await firstRunAfter(0)) ?? undefined);
    if (!firing) throw new Error(`failover ${o.tag}: no worker fired within 30 s of start`);
    await new Promise((r) => setTimeout(r, o.steadyMs));
    const held = await pollFor(Date.now() + 10_000, () => holder(ports), 250);
    const victim = held ?? 0;
    // The machine is shared: the load goes with the figure.
    const load = loadavg()[0]!;
    const killAt = Date.now();
    await workers[victim]!.stop();
    log(`failover ${o.tag}: killed worker ${victim + 1} of ${o.workers} (${held === undefined ? 'guessed' : 'probe'})`);
    const survivors = ports.filter((_, k) => k !== victim);
    const deadlineAt = killAt + o.deadlineMs;
    // The jobs the victim fired (its partitions): each must be fired again by another worker.
    const victimName = `failover-${o.tag}-${victim + 1}`;
    const victimJobs = await runs.distinct('jobId', { worker: victimName, trigger: 'schedule' });
    const [first, takeover] = await Promise.all([
      pollFor(deadlineAt, async () => {
        let worst = 0;
        for (const jobId of victimJobs) {
          const run = await runs.findOne(
            { jobId, trigger: 'schedule', status: { $ne: 'missed' }, createdAt: { $gt: new Date(killAt) } },
            { sort: { createdAt: 1 }, projection: { createdAt: 1 } },
          );
          if (!run) return undefined;
          worst = Math.max(worst, (run.createdAt as Date).getTime() - killAt);
        }
        return worst;
      }),
      pollFor(
        deadlineAt,
        async () => ((await allHeld(survivors, DEFAULT_PARTITIONS)) ? Date.now() - killAt : undefined),
        250,
      ),
    ]);
    log(
      `failover ${o.tag}: first fire ${first ?? 'none'} ms after the kill, takeover reported after ${takeover ?? 'none'} ms`,
    );
    const endAt = Math.min(deadlineAt, Date.now() + o.steadyMs);
    await new Promise((r) => setTimeout(r, Math.max(0, endAt - Date.now())));
    // Slots from the kill to `steadyMs` before the end: the ones the gap covered, each given
    // `steadyMs` to be fired (a survivor catching up lags for seconds).
    const until = endAt - o.steadyMs;
    const accounting = await accountSlots(db.conn, ids, killAt, until);
    return {
      workers: o.workers,
      jobs: o.jobs,
      found: held === undefined ? 'guess' : 'probe',
      ...(first !== undefined ? { firstFireMs: first } : {}),
      ...(takeover !== undefined ? { takeoverMs: takeover } : {}),
      ...accounting,
      load,
      deadlineMs: o.deadlineMs,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await db.drop();
  }
}

/** Every slot of every job in (from, until]: lost, missed, doubled, caught up, and the lag of those started. */
async function accountSlots(conn: Connection, ids: string[], from: number, until: number) {
  const runs = await conn
    .collection('cron_job_runs')
    .find(
      { scheduledFor: { $gt: new Date(from - 60_000) } },
      { projection: { jobId: 1, scheduledFor: 1, startedAt: 1, status: 1, trigger: 1 } },
    )
    .toArray();
  const bySlot = new Map<string, { count: number; missed: boolean; startedAt?: number }>();
  let catchup = 0;
  for (const run of runs) {
    const at = (run.scheduledFor as Date).getTime();
    if (run.trigger === 'manual') continue;
    const key = `${String(run.jobId as Types.ObjectId)} ${at}`;
    const entry = bySlot.get(key) ?? { count: 0, missed: false };
    // A late slot may hold its `missed` record and the catch-up run for it: one slot, not doubled.
    if (run.trigger === 'catchup') {
      if (at > from) catchup++;
    } else entry.count++;
    if (run.status === 'missed') entry.missed = true;
    const started = (run.startedAt as Date | null)?.getTime();
    if (started !== undefined) entry.startedAt = Math.min(entry.startedAt ?? Infinity, started);
    bySlot.set(key, entry);
  }
  let slots = 0;
  let lost = 0;
  let missed = 0;
  let doubled = 0;
  const lags: number[] = [];
  for (const id of ids) {
    for (const slot of slotsBetween(cronEverySecond(), 'UTC', new Date(from), new Date(until), 1_000_000)) {
      slots++;
      const entry = bySlot.get(`${id} ${slot.getTime()}`);
      if (!entry) lost++;
      else {
        if (entry.missed) missed++;
        if (entry.count > 1) doubled++;
        if (entry.startedAt !== undefined) lags.push(entry.startedAt - slot.getTime());
      }
    }
  }
  return { slots, lost, missed, doubled, catchup, lagP99Ms: quantile(lags, 0.99) };
}
