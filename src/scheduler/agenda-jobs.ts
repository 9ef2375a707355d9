import type { Agenda } from 'agenda';
import type { Connection } from 'mongoose';
import type { Logger } from '../lib/logger.js';
import type { Models } from '../models/index.js';
import { AGENDA_COLLECTION } from './agenda.js';
import { nextFire } from './cron.js';

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
  lockedAt?: Date | null;
}

const agendaJobs = (conn: Connection) => conn.collection<AgendaJobDoc>(AGENDA_COLLECTION);

/** Recurring Agenda jobs (the one per cron job); manual runs are one-off jobs beside them. */
const recurring = { repeatInterval: { $type: 'string' } } as const;

/**
 * Makes the one recurring Agenda job of a cron job match it. An existing job is changed in
 * place, only in the fields that differ: `save()` would also clear `lockedAt`, and a running
 * job whose lock is cleared can be started again by another worker.
 */
export async function scheduleJob(agenda: Agenda, conn: Connection, job: Schedulable): Promise<'created' | 'updated' | 'unchanged'> {
  const existing = await agendaJobs(conn).find({ 'data.jobId': job.id, ...recurring }).toArray();
  const [keep, ...extra] = existing;
  if (extra.length) await agendaJobs(conn).deleteMany({ _id: { $in: extra.map((e) => e._id) } });
  if (!keep) {
    await agenda
      .create(job.type, { jobId: job.id })
      .repeatEvery(job.cron, { timezone: job.timezone, skipImmediate: true })
      .unique({ 'data.jobId': job.id })
      .save();
    return 'created';
  }
  if (keep.name === job.type && keep.repeatInterval === job.cron && keep.repeatTimezone === job.timezone) return 'unchanged';
  await agendaJobs(conn).updateOne(
    { _id: keep._id },
    { $set: { name: job.type, repeatInterval: job.cron, repeatTimezone: job.timezone, nextRunAt: nextFire(job.cron, job.timezone) } },
  );
  return 'updated';
}

/** Removes every Agenda job of a cron job: its schedule and any manual run still queued. */
export async function cancelJob(agenda: Agenda, jobId: string): Promise<number> {
  return agenda.cancel({ data: { jobId } });
}

/** Removes the recurring Agenda job only (pause): queued manual runs still run. */
export async function unscheduleJob(conn: Connection, jobId: string): Promise<number> {
  const { deletedCount } = await agendaJobs(conn).deleteMany({ 'data.jobId': jobId, ...recurring });
  return deletedCount;
}

/** Queues a one-off Agenda job that executes a manual run. */
export async function queueManualRun(agenda: Agenda, job: Schedulable, runId: string): Promise<void> {
  await agenda.now(job.type, { jobId: job.id, runId });
}

export interface ReconcileResult {
  created: number;
  updated: number;
  removed: number;
}

/**
 * Makes Agenda match cron_jobs: every enabled job has exactly one recurring Agenda job with
 * its cron and timezone; disabled and deleted ones have none. Run on worker start, since an
 * API call that failed halfway or a hand-edited database can leave them apart.
 */
export async function reconcile(agenda: Agenda, conn: Connection, models: Models, logger: Logger): Promise<ReconcileResult> {
  const result: ReconcileResult = { created: 0, updated: 0, removed: 0 };
  const enabled = await models.CronJob.find({ enabled: true }, { type: 1, cron: 1, timezone: 1 }).lean();
  const wanted = new Set(enabled.map((j) => String(j._id)));
  for (const job of enabled) {
    const outcome = await scheduleJob(agenda, conn, { id: String(job._id), type: job.type, cron: job.cron, timezone: job.timezone });
    if (outcome !== 'unchanged') result[outcome]++;
  }
  const all = await agendaJobs(conn).find(recurring, { projection: { data: 1 } }).toArray();
  const orphans = all.filter((a) => !a.data?.jobId || !wanted.has(a.data.jobId)).map((a) => a._id);
  if (orphans.length) result.removed = (await agendaJobs(conn).deleteMany({ _id: { $in: orphans } })).deletedCount;
  logger.info(result, 'schedules reconciled');
  return result;
}
