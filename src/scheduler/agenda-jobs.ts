import type { Agenda } from 'agenda';
import type { Connection } from 'mongoose';
import type { Logger } from '../lib/logger.js';
import type { Models } from '../models/index.js';
import { AGENDA_COLLECTION } from './agenda.js';
import { nextFire } from './cron.js';

/** The Agenda job that wakes a worker at a cron job's slots; one per enabled cron job. */
export const FIRE_JOB = 'cron-fire';

/** What the Agenda side needs to know of a cron job. */
export interface Schedulable {
  id: string;
  type: string;
  cron: string;
  timezone: string;
}

interface AgendaJobDoc {
  _id: unknown;
  name: string;
  data?: { jobId?: string; runId?: string };
  repeatInterval?: string | null;
  repeatTimezone?: string | null;
}

const agendaJobs = (conn: Connection) => conn.collection<AgendaJobDoc>(AGENDA_COLLECTION);

/** Recurring Agenda jobs (the fire job of each cron job); runs are one-off jobs beside them. */
const recurring = { repeatInterval: { $type: 'string' } } as const;

/**
 * True when an Agenda job is the fire job of the given cron job's schedule as it is now. The
 * type is not part of it: a run executes the type the job has when the run starts.
 */
export const matchesSchedule = (agendaJob: Pick<AgendaJobDoc, 'name' | 'repeatInterval' | 'repeatTimezone'>, job: Schedulable) =>
  agendaJob.name === FIRE_JOB && agendaJob.repeatInterval === job.cron && agendaJob.repeatTimezone === job.timezone;

/**
 * Makes the one recurring Agenda job of a cron job match the schedule given. A job whose
 * cron or zone changed gets a new Agenda job rather than an edited one: a worker holding the old
 * one (mid-run, or locked ahead of its fire) writes its own idea of the next fire back when it
 * finishes, which would undo an edit; against a removed job that write simply fails. The new one
 * is saved before the others go, so a failure in between leaves the job scheduled.
 */
async function ensureScheduled(agenda: Agenda, conn: Connection, job: Schedulable): Promise<SyncOutcome> {
  const ofJob = { 'data.jobId': job.id, ...recurring };
  const before = await agendaJobs(conn).find(ofJob).toArray();
  const wasScheduled = before.some((a) => matchesSchedule(a, job));
  if (!wasScheduled) {
    // repeatInterval makes Agenda keep an estimate of the next wake-up in the database while a
    // fire is in progress; each fire then sets the exact next slot from our own cron maths.
    await agenda
      .create(FIRE_JOB, { jobId: job.id })
      .repeatEvery(job.cron, { timezone: job.timezone, skipImmediate: true })
      .schedule(nextFire(job.cron, job.timezone))
      // The schedule fields are in the key so it can never match a queued one-off run; insertOnly
      // so a match (a concurrent sync got there first) is not reset, lock included.
      .unique({ 'data.jobId': job.id, name: FIRE_JOB, repeatInterval: job.cron, repeatTimezone: job.timezone }, { insertOnly: true })
      .save();
  }
  // Keep the oldest job on this schedule and drop every other: old schedules, and the twin a
  // concurrent sync inserted (FerretDB's upsert is not atomic). Every sync picks the same one.
  const after = await agendaJobs(conn).find(ofJob).toArray();
  const keep = after.filter((a) => matchesSchedule(a, job)).sort((a, b) => String(a._id).localeCompare(String(b._id)))[0];
  const others = after.filter((a) => a !== keep);
  if (others.length) await agendaJobs(conn).deleteMany({ _id: { $in: others.map((a) => a._id) } });
  return wasScheduled ? 'unchanged' : before.length ? 'updated' : 'created';
}

export type SyncOutcome = 'created' | 'updated' | 'removed' | 'unchanged';

type ScheduleFields = { enabled: boolean; type: string; cron: string; timezone: string } | null;
const readSchedule = (models: Models, jobId: string): Promise<ScheduleFields> =>
  models.CronJob.findById(jobId, { enabled: 1, type: 1, cron: 1, timezone: 1 }).lean<ScheduleFields>();
const sameSchedule = (a: ScheduleFields, b: ScheduleFields) =>
  a?.enabled === b?.enabled && a?.type === b?.type && a?.cron === b?.cron && a?.timezone === b?.timezone;

/**
 * Brings the Agenda side of one cron job in line with its document, read fresh: scheduled
 * while enabled, none while paused or deleted. The document is read again afterwards and the
 * work repeated if it moved, so when two syncs of one job overlap (two API edits, an edit and a
 * reconcile) the last edit wins instead of the slower sync.
 */
export async function syncSchedule(agenda: Agenda, conn: Connection, models: Models, jobId: string): Promise<SyncOutcome> {
  let outcome: SyncOutcome = 'unchanged';
  let job = await readSchedule(models, jobId);
  for (let round = 0; round < 5; round++) {
    const step = job?.enabled
      ? await ensureScheduled(agenda, conn, { id: jobId, type: job.type, cron: job.cron, timezone: job.timezone })
      : (await unscheduleJob(conn, jobId))
        ? 'removed'
        : 'unchanged';
    if (step !== 'unchanged') outcome = step;
    const again = await readSchedule(models, jobId);
    if (sameSchedule(job, again)) return outcome;
    job = again;
  }
  return outcome;
}

/** Removes every Agenda job of a cron job: its fire job and any run still queued. */
export async function cancelJob(agenda: Agenda, jobId: string): Promise<number> {
  return agenda.cancel({ data: { jobId } });
}

/** Removes the fire job only (pause): runs already queued still run. */
async function unscheduleJob(conn: Connection, jobId: string): Promise<number> {
  const { deletedCount } = await agendaJobs(conn).deleteMany({ 'data.jobId': jobId, ...recurring });
  return deletedCount;
}

/** Queues the one-off Agenda job that executes a run, named by the job's type. */
export async function queueRun(agenda: Agenda, job: { id: string; type: string }, runId: string): Promise<void> {
  await agenda.now(job.type, { jobId: job.id, runId });
}

/**
 * One-off run jobs Agenda kept after their processor failed (it removes only successful ones):
 * done, unlocked and never due again. Their runs were recorded, or are swept as interrupted.
 */
export async function removeSpentRunJobs(conn: Connection): Promise<number> {
  const { deletedCount } = await agendaJobs(conn).deleteMany({ 'data.runId': { $exists: true }, nextRunAt: null, lockedAt: null });
  return deletedCount;
}

/**
 * Queued runs with no Agenda job to execute them (a worker died between creating the run and
 * queuing it, or the queuing failed with the database): queued again, or cancelled when their
 * job is gone. Runs younger than `minAgeMs` are left to the request or fire still creating them.
 */
export async function requeueOrphanedRuns(agenda: Agenda, conn: Connection, models: Models, minAgeMs: number): Promise<number> {
  const queued = await models.Run.find({ status: 'queued' }, { jobId: 1, type: 1, createdAt: 1 }).lean();
  let requeued = 0;
  for (const run of queued.filter((r) => r.createdAt.getTime() < Date.now() - minAgeMs)) {
    const jobId = String(run.jobId);
    const runId = String(run._id);
    const pending = await agendaJobs(conn).findOne({ 'data.jobId': jobId, 'data.runId': runId });
    if (pending && (pending as { nextRunAt?: Date | null }).nextRunAt) continue; // Agenda will deliver it, an expired lock included
    if (pending) await agendaJobs(conn).deleteOne({ _id: pending._id });
    const job = await models.CronJob.findById(run.jobId, { type: 1 }).lean();
    if (!job) {
      await models.Run.updateOne({ _id: run._id, status: 'queued' }, { $set: { status: 'cancelled', error: 'the job was deleted before the run started', finishedAt: new Date() } });
      continue;
    }
    await queueRun(agenda, { id: jobId, type: run.type }, runId);
    requeued++;
  }
  return requeued;
}

export interface ReconcileResult {
  created: number;
  updated: number;
  removed: number;
}

/**
 * Makes Agenda match cron_jobs: every enabled job has exactly one recurring Agenda job with
 * its type, cron and timezone; disabled and deleted ones have none. Run on worker start and
 * periodically, since an API call that failed halfway or a hand-edited database can leave them
 * apart. Each job is synced from its document as it is at that moment, never from a list read
 * earlier, so an edit made meanwhile is not undone.
 */
export async function reconcile(agenda: Agenda, conn: Connection, models: Models, logger: Logger): Promise<ReconcileResult> {
  const result: ReconcileResult = { created: 0, updated: 0, removed: 0 };
  const count = (outcome: SyncOutcome) => outcome !== 'unchanged' && result[outcome]++;
  const scheduled = await agendaJobs(conn).find(recurring, { projection: { data: 1, name: 1, repeatInterval: 1, repeatTimezone: 1 } }).toArray();
  const enabled = await models.CronJob.find({ enabled: true }, { _id: 1, type: 1, cron: 1, timezone: 1 }).lean();
  const wanted = new Set(enabled.map((j) => String(j._id)));
  const byJob = new Map<string, AgendaJobDoc[]>();
  for (const a of scheduled) if (a.data?.jobId) byJob.set(a.data.jobId, [...(byJob.get(a.data.jobId) ?? []), a]);
  for (const job of enabled) {
    const id = String(job._id);
    const mine = byJob.get(id) ?? [];
    // Two bulk reads find the jobs already in order; only the others are synced one by one.
    if (mine.length === 1 && matchesSchedule(mine[0]!, { id, type: job.type, cron: job.cron, timezone: job.timezone })) continue;
    count(await syncSchedule(agenda, conn, models, id));
  }
  for (const orphan of scheduled.filter((a) => !a.data?.jobId || !wanted.has(a.data.jobId))) {
    const jobId = orphan.data?.jobId;
    if (jobId) count(await syncSchedule(agenda, conn, models, jobId));
    else result.removed += (await agendaJobs(conn).deleteOne({ _id: orphan._id })).deletedCount;
  }
  if (result.created || result.updated || result.removed) logger.info(result, 'schedules reconciled');
  return result;
}
