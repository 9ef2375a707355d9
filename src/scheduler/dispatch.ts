import type { Agenda, Job } from 'agenda';
import mongoose, { type Connection } from 'mongoose';
import { eachLimit, sleep } from '../lib/async.js';
import { agendaJobs } from './agenda.js';
import type { SchedulerDeps } from './deps.js';
import { fireSlots } from './fire.js';

/**
 * The one Agenda job that fires every cron job's slots. A worker holding it ticks at each whole
 * second (cron slots are whole seconds), reads the cron jobs that are due with one query and
 * fires them. One Agenda job per cron job would make Agenda's lock query, which the local database
 * answers by reading every document of the collection, cost O(jobs) per fire (seconds per fire at
 * 10 000 jobs); one query per tick costs O(jobs) per second instead, and on MongoDB it is an index range.
 */
export const DISPATCH_JOB = 'cron-dispatch';

/** Fires of one tick that go on at once: enough to keep the database busy, not more. */
const FIRE_CONCURRENCY = 8;

/** A tick looks a little past the second it is for, so a slot is never read a hair too early. */
const TICK_OFFSET_MS = 5;

/**
 * Makes sure the dispatcher's Agenda job exists, once. An upsert is not atomic everywhere, so two
 * workers starting together can each insert one: the oldest is kept and a copy no worker holds
 * is removed (a held copy only means two dispatchers for a while, which the slot accounting
 * makes harmless; its holder stops when the copy is gone).
 */
export async function ensureDispatcher(agenda: Agenda, conn: Connection): Promise<void> {
  await agenda
    .create(DISPATCH_JOB, {})
    // Recurring, so Agenda keeps it after each hold; the holder sets the next start itself.
    .repeatEvery('1 minute', { skipImmediate: true })
    .schedule(new Date())
    .unique({ name: DISPATCH_JOB }, { insertOnly: true })
    .save();
  const copies = await agendaJobs(conn)
    .find({ name: DISPATCH_JOB }, { projection: { lockedAt: 1 } })
    .sort({ _id: 1 })
    .toArray();
  const spare = copies.slice(1).filter((copy) => !copy.lockedAt);
  if (spare.length) await agendaJobs(conn).deleteMany({ _id: { $in: spare.map((copy) => copy._id) } });
}

/** One tick: every enabled job whose next fire has come is fired. Returns how many were due. */
export async function tick(deps: SchedulerDeps, now = new Date()): Promise<number> {
  const due = await deps.models.CronJob.find(
    { enabled: true, nextRunAt: mongoose.trusted({ $lte: now }) },
    { _id: 1 },
  ).lean();
  await eachLimit(due, FIRE_CONCURRENCY, (job) =>
    // One job's failure (the database, a bad document) must not hold back the others; its
    // next fire stays due, so the next tick tries it again.
    fireSlots(deps, String(job._id), now).catch((error) =>
      deps.logger.warn({ err: error, jobId: String(job._id) }, 'fire failed'),
    ),
  );
  return due.length;
}

/**
 * The dispatcher's processor: ticks until the worker stops (`signal`), keeping Agenda's lock
 * fresh so no other worker takes over while this one lives. A worker that dies stops touching
 * the lock; another takes the job when the lock lifetime has passed. On return the job is due
 * again at once, for whichever worker polls next.
 */
export async function runDispatcher(
  deps: SchedulerDeps,
  agendaJob: Job,
  signal: AbortSignal,
  lockLifetimeMs: number,
): Promise<void> {
  // Touched on a timer rather than between ticks: a tick with thousands of fires can outlast the
  // lock. Each touch also keeps the stored next start at "now": when this worker dies, Agenda
  // hands an expired lock to another worker only once that time has come, which must be at once.
  // Ends the loop when the worker stops, or when this copy of the job was removed (a duplicate).
  const holding = new AbortController();
  signal.addEventListener('abort', () => holding.abort(), { once: true });
  const heartbeat = setInterval(() => {
    agendaJob.attrs.nextRunAt = new Date();
    agendaJob.touch().catch(async (error: unknown) => {
      deps.logger.warn({ err: error }, 'dispatcher heartbeat failed');
      // Agenda hands out its ids as hex strings; stored, they are ObjectIds.
      const exists = await agendaJobs(deps.conn)
        .countDocuments({ _id: new mongoose.Types.ObjectId(String(agendaJob.attrs._id)) })
        .catch(() => 1);
      if (!exists) holding.abort();
    });
  }, lockLifetimeMs / 4);
  try {
    while (!holding.signal.aborted) {
      const at = Math.floor(Date.now() / 1000) * 1000 + 1000 + TICK_OFFSET_MS;
      await sleep(at - Date.now(), holding.signal);
      if (holding.signal.aborted) break;
      await tick(deps).catch((error) => deps.logger.warn({ err: error }, 'tick failed'));
    }
  } finally {
    clearInterval(heartbeat);
    agendaJob.attrs.nextRunAt = new Date();
  }
}
