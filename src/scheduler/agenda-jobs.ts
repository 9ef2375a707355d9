import type { Agenda } from 'agenda';
import mongoose, { type Connection } from 'mongoose';
import { eachLimit } from '../lib/async.js';
import type { Logger } from '../lib/logger.js';
import type { Models } from '../models/index.js';
import { AGENDA_COLLECTION } from './agenda.js';
import { nextFire } from './cron.js';
import { ensureDispatcher, LEGACY_FIRE_JOB } from './dispatch.js';

interface AgendaJobDoc {
  _id: unknown;
  name: string;
  data?: { jobId?: string; runId?: string };
}

const agendaJobs = (conn: Connection) => conn.collection<AgendaJobDoc>(AGENDA_COLLECTION);

/** Removes the Agenda jobs of a cron job's runs still queued (it was deleted). */
export async function cancelJob(agenda: Agenda, jobId: string): Promise<number> {
  return agenda.cancel({ data: { jobId } });
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
  const { deletedCount } = await agendaJobs(conn).deleteMany({
    'data.runId': { $exists: true },
    nextRunAt: null,
    lockedAt: null,
  });
  return deletedCount;
}

/**
 * Queued runs with no Agenda job to execute them (a worker died between creating the run and
 * queuing it, or the queuing failed with the database): queued again, or cancelled when their
 * job is gone. Runs younger than `minAgeMs` are left to the request or fire still creating them.
 */
export async function requeueOrphanedRuns(
  agenda: Agenda,
  conn: Connection,
  models: Models,
  minAgeMs: number,
): Promise<number> {
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
      await models.Run.updateOne(
        { _id: run._id, status: 'queued' },
        { $set: { status: 'cancelled', error: 'the job was deleted before the run started', finishedAt: new Date() } },
      );
      continue;
    }
    await queueRun(agenda, { id: jobId, type: run.type }, runId);
    requeued++;
  }
  return requeued;
}

export interface ReconcileResult {
  /** Enabled jobs given the next fire they lacked (stored by hand, or before nextRunAt was kept). */
  scheduled: number;
  /** Paused jobs that still had a next fire. */
  cleared: number;
  /** Agenda jobs of the old one-per-cron-job scheme, removed. */
  removed: number;
}

/**
 * Makes the database ready for the dispatcher, on worker start and periodically: its Agenda job
 * exists, every enabled job has a next fire (the dispatcher fires what is due by it) and paused
 * ones have none. Each correction is conditional on the field still being what was read, so an
 * edit made meanwhile is not undone. Three queries when everything is in order.
 */
export async function reconcile(
  agenda: Agenda,
  conn: Connection,
  models: Models,
  logger: Logger,
): Promise<ReconcileResult> {
  await ensureDispatcher(agenda, conn);
  const { deletedCount: removed } = await agendaJobs(conn).deleteMany({ name: LEGACY_FIRE_JOB });
  const unscheduled = await models.CronJob.find({ enabled: true, nextRunAt: null }, { cron: 1, timezone: 1 }).lean();
  let scheduled = 0;
  // Eight updates in flight rather than one: round trips overlap (a bulkWrite of many updates
  // never settled on FerretDB 1.24.2; MongoDB would take one).
  await eachLimit(unscheduled, 8, async (job) => {
    const { modifiedCount } = await models.CronJob.updateOne(
      { _id: job._id, enabled: true, nextRunAt: null, cron: job.cron, timezone: job.timezone },
      { $set: { nextRunAt: nextFire(job.cron, job.timezone) } },
      { timestamps: false },
    );
    scheduled += modifiedCount;
  });
  const { modifiedCount: cleared } = await models.CronJob.updateMany(
    { enabled: false, nextRunAt: mongoose.trusted({ $ne: null }) },
    { $set: { nextRunAt: null } },
    { timestamps: false },
  );
  const result = { scheduled, cleared, removed };
  if (scheduled || cleared || removed) logger.info(result, 'schedules reconciled');
  return result;
}
