import type { Agenda } from 'agenda';
import type { Connection } from 'mongoose';
import type { Logger } from '../lib/logger.js';
import type { Models } from '../models/index.js';
import { AGENDA_COLLECTION } from './agenda.js';

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

/** Recurring Agenda jobs (the one per cron job); manual runs are one-off jobs beside them. */
const recurring = { repeatInterval: { $type: 'string' } } as const;

/** True when an Agenda job fires the given cron job's schedule as it is now. */
export const matchesSchedule = (agendaJob: Pick<AgendaJobDoc, 'name' | 'repeatInterval' | 'repeatTimezone'>, job: Schedulable) =>
  agendaJob.name === job.type && agendaJob.repeatInterval === job.cron && agendaJob.repeatTimezone === job.timezone;

/**
 * Makes the one recurring Agenda job of a cron job match it. A job whose type, cron or zone
 * changed gets a new Agenda job rather than an edited one: a worker holding the old one (mid-run,
 * or locked ahead of its fire) writes its own idea of the next fire back when it finishes, which
 * would undo an edit; against a removed job that write simply fails.
 */
export async function scheduleJob(agenda: Agenda, conn: Connection, job: Schedulable): Promise<'created' | 'updated' | 'unchanged'> {
  const existing = await agendaJobs(conn).find({ 'data.jobId': job.id, ...recurring }).toArray();
  const current = existing.find((a) => matchesSchedule(a, job));
  const stale = existing.filter((a) => a !== current);
  if (stale.length) await agendaJobs(conn).deleteMany({ _id: { $in: stale.map((a) => a._id) } });
  if (current) return 'unchanged';
  await agenda
    .create(job.type, { jobId: job.id })
    .repeatEvery(job.cron, { timezone: job.timezone, skipImmediate: true })
    .unique({ 'data.jobId': job.id, name: job.type, repeatInterval: job.cron, repeatTimezone: job.timezone })
    .save();
  return existing.length ? 'updated' : 'created';
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
 * its type, cron and timezone; disabled and deleted ones have none. Run on worker start and
 * periodically, since an API call that failed halfway or a hand-edited database can leave them
 * apart. The Agenda side is read first and each orphan re-checked before removal, so a job the
 * API creates or resumes meanwhile keeps its schedule.
 */
export async function reconcile(agenda: Agenda, conn: Connection, models: Models, logger: Logger): Promise<ReconcileResult> {
  const result: ReconcileResult = { created: 0, updated: 0, removed: 0 };
  const before = await agendaJobs(conn).find(recurring, { projection: { data: 1 } }).toArray();
  const enabled = await models.CronJob.find({ enabled: true }, { type: 1, cron: 1, timezone: 1 }).lean();
  const wanted = new Set(enabled.map((j) => String(j._id)));
  for (const job of enabled) {
    const outcome = await scheduleJob(agenda, conn, { id: String(job._id), type: job.type, cron: job.cron, timezone: job.timezone });
    if (outcome !== 'unchanged') result[outcome]++;
  }
  for (const orphan of before.filter((a) => !a.data?.jobId || !wanted.has(a.data.jobId))) {
    const jobId = orphan.data?.jobId;
    if (jobId && (await models.CronJob.exists({ _id: jobId, enabled: true }))) continue;
    result.removed += (await agendaJobs(conn).deleteOne({ _id: orphan._id })).deletedCount;
  }
  if (result.created || result.updated || result.removed) logger.info(result, 'schedules reconciled');
  return result;
}
