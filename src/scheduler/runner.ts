import type { Agenda, Job } from 'agenda';
import { Types, type Connection } from 'mongoose';
import type { Env } from '../env.js';
import { getJobType } from '../jobs/registry.js';
import { isDuplicateKey } from '../lib/db.js';
import type { Logger } from '../lib/logger.js';
import type { Models } from '../models/index.js';
import { matchesSchedule, syncSchedule } from './agenda-jobs.js';
import { nextFire, slotAt } from './cron.js';

export interface RunnerDeps {
  agenda: Agenda;
  conn: Connection;
  models: Models;
  config: Env;
  logger: Logger;
}

export interface AgendaJobData {
  jobId: string;
  /** Set on manual runs: the run document the API created. */
  runId?: string;
}

type JobDoc = { _id: Types.ObjectId; ownerId: string; type: string; cron: string; timezone: string; enabled: boolean; payload: unknown };

/**
 * Agenda fires a little after the slot, never meaningfully before it; the tolerance absorbs a
 * timer that wakes a few ms early, so the fire still counts for the slot it was meant for.
 */
const EARLY_FIRE_TOLERANCE_MS = 250;

/**
 * Run bookkeeping leaves `updatedAt` alone: it stands for the owner's last edit, and the API's
 * edit-conflict check compares it, so a run finishing must not make an edit look stale.
 */
const RUN_STATE = { timestamps: false } as const;

/**
 * Claims the run a fire stands for, or returns undefined when another worker already has it.
 * A scheduled fire claims its slot by inserting the run under the unique
 * (jobId, scheduledFor, trigger) index; a manual run, created queued by the API, by inserting
 * its claim document.
 */
async function claim(deps: RunnerDeps, job: JobDoc, data: AgendaJobData, startedAt: Date) {
  const { models, config } = deps;
  const running = { status: 'running' as const, startedAt, worker: config.WORKER_NAME };
  try {
    if (data.runId) {
      await models.RunClaim.create({ _id: new Types.ObjectId(data.runId), worker: config.WORKER_NAME });
      // Still queued: a delete of the job may have cancelled it meanwhile.
      return (await models.Run.findOneAndUpdate({ _id: data.runId, status: 'queued' }, { $set: running }, { returnDocument: 'after' }).lean()) ?? undefined;
    }
    const scheduledFor = slotAt(job.cron, job.timezone, new Date(startedAt.getTime() + EARLY_FIRE_TOLERANCE_MS));
    const run = await models.Run.create({ jobId: job._id, ownerId: job.ownerId, type: job.type, scheduledFor, trigger: 'schedule', ...running });
    return run.toObject();
  } catch (error) {
    if (isDuplicateKey(error)) return undefined;
    throw error;
  }
}

/** Why a fire must not run, or undefined when it should. */
function refusal(job: JobDoc | null, agendaJob: Job<AgendaJobData>): 'deleted' | 'paused' | 'stale' | undefined {
  if (!job) return 'deleted';
  if (agendaJob.attrs.data.runId) return undefined; // a manual run goes ahead even when paused
  if (!job.enabled) return 'paused';
  // A copy a worker held while the job was edited: the schedule it fires is no longer the job's.
  const schedule = { id: String(job._id), type: job.type, cron: job.cron, timezone: job.timezone };
  const fired = { name: agendaJob.attrs.name, repeatInterval: String(agendaJob.attrs.repeatInterval), repeatTimezone: agendaJob.attrs.repeatTimezone ?? null };
  return matchesSchedule(fired, schedule) ? undefined : 'stale';
}

/**
 * Executes one fire of an Agenda job: loads the current cron job, claims the run, runs the
 * handler of the job's current type and records the outcome on the run and the job. A handler
 * failure is the run's result, not Agenda's: this only throws when the database does.
 */
export async function executeFire(deps: RunnerDeps, agendaJob: Job<AgendaJobData>): Promise<void> {
  const { models } = deps;
  const data = agendaJob.attrs.data;
  const startedAt = new Date();
  const log = deps.logger.child({ jobId: data.jobId, ...(data.runId ? { runId: data.runId } : {}) });

  const job = await models.CronJob.findById(data.jobId).lean<JobDoc>();
  const refused = refusal(job, agendaJob);
  if (refused || !job) {
    log.info({ reason: refused }, 'fire skipped');
    // A fire of an old schedule means Agenda and the job disagree; set Agenda right now rather
    // than at the next reconcile.
    if (refused === 'stale') await syncSchedule(deps.agenda, deps.conn, models, data.jobId);
    return;
  }
  const run = await claim(deps, job, data, startedAt);
  if (!run) {
    log.info('run already claimed by another worker; skipped');
    return;
  }
  const runLog = log.child({ runId: String(run._id), type: job.type, scheduledFor: run.scheduledFor });
  runLog.info({ trigger: run.trigger }, 'run started');

  let status: 'succeeded' | 'failed' = 'failed';
  let error: string | null = null;
  let result: Record<string, unknown> | null = null;
  try {
    await models.CronJob.updateOne({ _id: job._id, enabled: true }, { $set: { status: 'running' } }, RUN_STATE);
    const type = getJobType(job.type);
    if (!type) throw new Error(`job type ${job.type} is no longer registered`);
    const parsed = type.payload.safeParse(job.payload);
    if (!parsed.success) {
      throw new Error(`stored payload is invalid for ${type.name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    result = await type.handler(parsed.data, {
      runId: String(run._id),
      jobId: String(job._id),
      ownerId: job.ownerId,
      scheduledFor: run.scheduledFor,
      trigger: run.trigger,
      attempt: 1,
      signal: new AbortController().signal,
      logger: runLog,
      conn: deps.conn,
      models,
      config: deps.config,
    });
    status = 'succeeded';
  } catch (caught) {
    error = caught instanceof Error ? caught.message : String(caught);
  } finally {
    await record(deps, job._id, run._id, startedAt, status, error, result);
  }
  const durationMs = Date.now() - startedAt.getTime();
  if (status === 'failed') runLog.error({ durationMs, error }, 'run failed');
  else runLog.info({ durationMs, result }, 'run finished');
}

/**
 * Writes a run's outcome and the job's state after it. The two job updates are each
 * conditional on `enabled`, so a pause that lands while the run goes on stays a pause.
 */
async function record(
  deps: RunnerDeps,
  jobId: Types.ObjectId,
  runId: unknown,
  startedAt: Date,
  status: 'succeeded' | 'failed',
  error: string | null,
  result: Record<string, unknown> | null,
) {
  const { models } = deps;
  const finishedAt = new Date();
  await models.Run.updateOne({ _id: runId }, { $set: { status, finishedAt, durationMs: finishedAt.getTime() - startedAt.getTime(), error, result } });
  const current = await models.CronJob.findById(jobId, { cron: 1, timezone: 1 }).lean();
  if (!current) return;
  await models.CronJob.updateOne(
    { _id: jobId, enabled: true },
    { $set: { lastRunAt: startedAt, status: status === 'failed' ? 'failed' : 'idle', nextRunAt: nextFire(current.cron, current.timezone) } },
    RUN_STATE,
  );
  await models.CronJob.updateOne({ _id: jobId, enabled: false }, { $set: { lastRunAt: startedAt, status: 'paused', nextRunAt: null } }, RUN_STATE);
}
