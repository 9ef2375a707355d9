import { loadavg } from 'node:os';
import type { Connection, Types } from 'mongoose';
import { AGENDA_COLLECTION } from '../../src/scheduler/agenda.js';
import { nextFire } from '../../src/scheduler/cron.js';
import { BASELINE_JOB, type BaselineFire, FIRE_LINE, seedBaseline, startBaseline } from '../baselines/plain-agenda.js';
import { commandSum, commandsPer, commandTotals } from './db-commands.js';
import { type BenchDb, PROCESS_EVERY_MS, type SchedBench, startOurWorker } from './sched-bench.js';
import type { CommandTotals } from './sched-monitor.js';
import { seedJobs } from './seed.js';
import { quantile } from './stats.js';
import { cpuSeconds, type ServiceProcess, type WarningCounts } from './worker-process.js';

/** All N jobs on one second of the minute, or their seconds spread over the minute. */
export type Shape = 'same-second' | 'spread';
export type Side = 'ours' | 'baseline';

export interface LagCase {
  n: number;
  shape: Shape;
  /**
   * Same-second: how long after the slot the round waits for the last start. Spread: how long
   * after the one-minute window. A slot not started by then counts as started at that moment.
   */
  deadlineMs: number;
  /** The process is sampled (memory, CPU) no earlier than this long after it was ready. */
  minRunMs?: number;
  /** Names the round's database. */
  tag: string;
}

/** How one round went, for ours or the baseline. */
export interface LagRound {
  side: Side;
  n: number;
  shape: Shape;
  /** One per expected slot, ms; a slot not started by the deadline counts as started at the deadline. */
  lagsMs: number[];
  notStarted: number;
  /** Same-second: slots started per second from the slot to the last start (0 when none started). */
  startsPerSecond: number;
  /**
   * How long before the (first) slot the process was ready. Agenda's first poll is at start
   * and locks what is due within processEvery, so this is the head start of the lock queries.
   */
  headStartMs: number;
  /** One Agenda lock query (findOneAndUpdate on the job name) on the seeded collection before start, ms. */
  lockQueryMs: number;
  /** Ours only: how the slots were accounted for (missed, skipped, catch-up runs, runs queued but not started). */
  accounted?: { missed: number; skipped: number; catchup: number; queuedNotStarted: number };
  /**
   * Slots started more than once. Baseline: two lock chains took the same job (FerretDB's
   * findAndModify is not atomic). Ours: more than one started run for the job's slot.
   */
  duplicateStarts?: number;
  /** The round's deadline (see LagCase.deadlineMs); absent in results written before it was kept. */
  deadlineMs?: number;
  /** Every client's database commands in the round as FerretDB counted them, in all. */
  serverCommands?: number;
  /** The machine's 1-minute load average at the end of the round (the machine is shared). */
  load?: number;
  /** Ours only: slot to the run's creation by the fire (the fire's own lag), ms, per run created. */
  firedLagsMs?: number[];
  readyMs: number;
  rssReadyMb: number;
  rssEndMb: number;
  /** From ready to the end of the round: its length, and CPU seconds of the process and of FerretDB. */
  windowMs: number;
  cpu: { process: number; db: number };
  commands?: CommandTotals;
  warnings: WarningCounts;
}

const cronOf = (shape: Shape, second: number) => (i: number) =>
  `${shape === 'same-second' ? second : i % 60} * * * * *`;

/**
 * How long seeding, the lock query probe and the boot will take, so that the same-second slot
 * falls a second or two after the process is ready: the last time seen for that side and size,
 * else a rough guess, with a margin. Too short a guess costs a minute (the next slot is
 * measured), too long one a wait. (Moving 10 000 jobs to a new second afterwards is no option:
 * an updateMany of 10 000 documents takes minutes on FerretDB.)
 */
const bootSeen = new Map<string, number>();
const slotDelayMs = (side: Side, n: number) =>
  1.3 * (bootSeen.get(`${side} ${n}`) ?? (side === 'ours' ? 2000 + n * 0.5 : 1000 + n * 0.6)) + 2000;

/** The second of the minute that comes `ms` from now. */
const secondIn = (ms: number) => new Date(Date.now() + ms).getUTCSeconds();

/**
 * The slot each job is measured at: its first one at least a second after the process was
 * ready. Spread: the window is the minute from there, each job has one slot in it.
 */
function expectedSlots(crons: string[], readyAt: number) {
  const windowStart = Math.ceil((readyAt + 1000) / 1000) * 1000;
  const slots = crons.map((c) => nextFire(c, 'UTC', new Date(windowStart - 1)).getTime());
  return { slots, windowStart, firstSlot: Math.min(...slots) };
}

/**
 * Waits until every job has delivered an email at or after its slot (so its slot has started)
 * and `minUntil` has passed, or until `deadlineAt`. Deliveries are counted at the bench's SMTP
 * server, which costs the database nothing.
 */
async function waitForDeliveries(bench: SchedBench, slots: number[], deadlineAt: number, minUntil: number) {
  const pending = new Map(slots.map((slot, i) => [`user${i}@example.com`, slot]));
  // Earlier rounds' deliveries are all before this round's slots, so they never count.
  let seen = 0;
  while (Date.now() < minUntil || (Date.now() < deadlineAt && pending.size > 0)) {
    const delivered = bench.smtp.delivered;
    for (; seen < delivered.length; seen++) {
      const d = delivered[seen]!;
      const slot = pending.get(d.to);
      if (slot !== undefined && d.at.getTime() >= slot) pending.delete(d.to);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Slots started per second from the first slot to the last start. */
function startRate(starts: number[], firstSlot: number): number {
  if (!starts.length) return 0;
  const span = Math.max(...starts) - firstSlot;
  return span > 0 ? starts.length / (span / 1000) : starts.length;
}

/**
 * Agenda's lock query (MongoBackend.getNextJobToRun) for a job name, with a scan horizon in the
 * past so it locks nothing: FerretDB still reads every document of the collection to answer.
 * The median of three, ms.
 */
async function lockQueryMs(conn: Connection, name: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    await conn.collection(AGENDA_COLLECTION).findOneAndUpdate(
      {
        name,
        disabled: { $ne: true },
        $or: [{ lockedAt: { $eq: null }, nextRunAt: { $lte: new Date(0) } }, { lockedAt: { $lte: new Date(0) } }],
      },
      { $set: { lockedAt: new Date() } },
      { sort: { nextRunAt: 1, priority: -1 }, returnDocument: 'after' },
    );
    times.push(performance.now() - started);
  }
  return quantile(times, 0.5);
}

/** What differs between our worker and the baseline in a round. */
interface SideOps {
  lockName: string;
  seed(db: BenchDb, n: number, cron: (i: number) => string): Promise<void>;
  start(db: BenchDb, tag: string): Promise<ServiceProcess & { commands?: () => Promise<CommandTotals> }>;
  /** Each job's start of its expected slot, epoch ms (absent when it has not started), and ours' accounting. */
  read(
    db: BenchDb,
    slots: number[],
  ): Promise<{
    starts: (number | undefined)[];
    extra?: Pick<LagRound, 'accounted' | 'firedLagsMs' | 'duplicateStarts'>;
  }>;
}

function ours(bench: SchedBench): SideOps {
  let ids: string[] = [];
  return {
    // Scheduled runs no longer pass through Agenda; its lock query still serves manual runs.
    lockName: 'sendEmail',
    async seed(db, n, cron) {
      ids = await seedJobs(db.conn, n, { cron, owners: Math.ceil(n / 50) });
    },
    start: (db, tag) => startOurWorker(bench, db.uri, `worker-${tag}`, 180_000),
    read: (db, slots) => readRuns(db.conn, ids, slots),
  };
}

function baseline(bench: SchedBench): SideOps {
  const fires: BaselineFire[] = [];
  return {
    lockName: BASELINE_JOB,
    seed: (db, n, cron) => seedBaseline(db.conn.db!, n, cron),
    async start(db) {
      const proc = await startBaseline(db.uri, PROCESS_EVERY_MS, bench.smtp.url);
      proc.onLine((line) => {
        if (line.startsWith(FIRE_LINE)) fires.push(JSON.parse(line.slice(FIRE_LINE.length)) as BaselineFire);
      });
      return proc;
    },
    async read(_db, slots) {
      const starts: (number | undefined)[] = slots.map(() => undefined);
      let duplicateStarts = 0;
      for (const f of fires) {
        if (f.slot !== slots[f.i]) continue;
        if (starts[f.i] !== undefined) duplicateStarts++;
        starts[f.i] = Math.min(starts[f.i] ?? Infinity, f.startedAt);
      }
      return { starts, extra: { duplicateStarts } };
    },
  };
}

/**
 * One round: seed N jobs on a fresh database, start the process (ours: the worker entry point;
 * baseline: plain Agenda), wait until every expected slot has started or the deadline has
 * passed, and read each slot's start.
 */
export async function lagRound(bench: SchedBench, side: Side, c: LagCase, log: (m: string) => void): Promise<LagRound> {
  for (let attempt = 1; ; attempt++) {
    const round = await attemptRound(bench, side, c, log, attempt === 2);
    if (round) return round;
    log(`${side} ${c.tag}: ready after the seeded slot; seeding again with the boot time just seen`);
  }
}

/** One attempt; undefined when the same-second slot came before the process was ready (unless `last`). */
async function attemptRound(
  bench: SchedBench,
  side: Side,
  c: LagCase,
  log: (m: string) => void,
  last: boolean,
): Promise<LagRound | undefined> {
  const ops = side === 'ours' ? ours(bench) : baseline(bench);
  const settled = await bench.settle();
  if (settled > 1000) log(`waited ${settled} ms for FerretDB to finish the previous case's queries`);
  const db = await bench.database(`${side}_${c.tag}`);
  try {
    const seeding = Date.now();
    const cron = cronOf(c.shape, secondIn(slotDelayMs(side, c.n)));
    await ops.seed(db, c.n, cron);
    const lockMs = await lockQueryMs(db.conn, ops.lockName);
    const cpuDb0 = cpuSeconds(bench.dbPid);
    const proc = await ops.start(db, c.tag);
    const server0 = await commandTotals(db.conn.db!);
    const readyAt = Date.now();
    bootSeen.set(`${side} ${c.n}`, readyAt - seeding);
    const rssReadyMb = proc.rssMb();
    const cpu0 = proc.cpuSeconds();
    await proc.commands?.(); // from here on
    try {
      const { slots, windowStart, firstSlot } = expectedSlots(
        Array.from({ length: c.n }, (_, i) => cron(i)),
        readyAt,
      );
      // Missed: the next minute's slot would come, a minute's wait; seeding again is quicker.
      if (c.shape === 'same-second' && firstSlot - readyAt > PROCESS_EVERY_MS + 5000 && !last) return undefined;
      const deadlineAt = c.shape === 'same-second' ? firstSlot + c.deadlineMs : windowStart + 60_000 + c.deadlineMs;
      log(`${side} ${c.tag}: ready in ${Math.round(proc.readyMs)} ms, first slot ${firstSlot - readyAt} ms after`);
      await waitForDeliveries(bench, slots, deadlineAt, readyAt + (c.minRunMs ?? 0));
      const endAt = Date.now();
      const commands = await proc.commands?.();
      const serverCommands = commandSum(commandsPer(server0, await commandTotals(db.conn.db!), 1));
      const { starts, extra } = await ops.read(db, slots);
      const inTime = starts.filter((s): s is number => s !== undefined && s <= deadlineAt);
      return {
        side,
        n: c.n,
        shape: c.shape,
        lagsMs: slots.map((slot, i) => Math.min(starts[i] ?? deadlineAt, deadlineAt) - slot),
        notStarted: c.n - inTime.length,
        startsPerSecond: startRate(inTime, firstSlot),
        headStartMs: firstSlot - readyAt,
        lockQueryMs: lockMs,
        ...extra,
        readyMs: proc.readyMs,
        rssReadyMb,
        rssEndMb: proc.rssMb(),
        windowMs: endAt - readyAt,
        cpu: { process: proc.cpuSeconds() - cpu0, db: cpuSeconds(bench.dbPid) - cpuDb0 },
        ...(commands ? { commands } : {}),
        deadlineMs: c.deadlineMs,
        serverCommands,
        load: loadavg()[0]!,
        warnings: proc.warnings,
      };
    } finally {
      await proc.stop();
    }
  } finally {
    await db.drop();
  }
}

/** Starts of our runs at the expected slots, and how those slots were accounted for. */
async function readRuns(conn: Connection, ids: string[], slots: number[]) {
  const index = new Map(ids.map((id, i) => [id, i]));
  const runs = await conn
    .collection('cron_job_runs')
    .find(
      { scheduledFor: { $gte: new Date(Math.min(...slots)) } },
      { projection: { jobId: 1, scheduledFor: 1, startedAt: 1, createdAt: 1, status: 1, trigger: 1 } },
    )
    .toArray();
  const starts: (number | undefined)[] = ids.map(() => undefined);
  const accounted = { missed: 0, skipped: 0, catchup: 0, queuedNotStarted: 0 };
  const firedLagsMs: number[] = [];
  let duplicateStarts = 0;
  for (const run of runs) {
    const i = index.get(String(run.jobId as Types.ObjectId));
    const slot = i === undefined ? undefined : slots[i];
    if (i === undefined || (run.scheduledFor as Date).getTime() !== slot) continue;
    if (run.status === 'missed') accounted.missed++;
    else firedLagsMs.push((run.createdAt as Date).getTime() - slot);
    if (run.status === 'skipped') accounted.skipped++;
    if (run.status === 'queued') accounted.queuedNotStarted++;
    if (run.trigger === 'catchup') accounted.catchup++;
    const startedAt = (run.startedAt as Date | null)?.getTime();
    if (startedAt === undefined) continue;
    if (starts[i] !== undefined) duplicateStarts++;
    starts[i] = Math.min(starts[i] ?? Infinity, startedAt);
  }
  return { starts, extra: { accounted, firedLagsMs, duplicateStarts } };
}
