import type { Job } from 'agenda';
import { Types, type Connection } from 'mongoose';
import type { Env } from '../env.js';
import type { JobType } from '../jobs/job-type.js';
import { isDuplicateKey } from '../lib/db.js';
import type { Logger } from '../lib/logger.js';
import type { Models } from '../models/index.js';
import { nextFire, slotAt } from './cron.js';

export interface RunnerDeps {
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

/**
 * Agenda fires a little after the slot, never meaningfully before it; the tolerance absorbs a
 * timer that wakes a few ms early, so the fire still counts for the slot it was meant for.
 */
const EARLY_FIRE_TOLERANCE_MS = 250;

/**
 * Claims the run a fire stands for, or returns undefined when another worker already has it.
 * A scheduled fire claims its slot by inserting the run under the unique (jobId, scheduledFor)
 * index; a manual run, created queued by the API, by inserting its claim document.
 */
async function claim(deps: RunnerDeps, job: { _id: Types.ObjectId; ownerId: string; type: string; cron: string; timezone: string }, data: AgendaJobData, startedAt: Date) {
  const { models, config } = deps;
  const running = { status: 'running' as const, startedAt, worker: config.WORKER_NAME };
  if (data.runId) {
    try {
      await models.RunClaim.create({ _id: new Types.ObjectId(data.runId), worker: config.WORKER_NAME });
    } catch (error) {
      if (isDuplicateKey(error)) return undefined;
      throw error;
    }
    return models.Run.findByIdAndUpdate(data.runId, { $set: running }, { returnDocument: 'after' }).lean();
  }
  const scheduledFor = slotAt(job.cron, job.timezone, new Date(startedAt.getTime() + EARLY_FIRE_TOLERANCE_MS));
  try {
    const run = await models.Run.create({ jobId: job._id, ownerId: job.ownerId, type: job.type, scheduledFor, trigger: 'schedule', ...running });
    return run.toObject();
  } catch (error) {
    if (isDuplicateKey(error)) return undefined;
    throw error;
  }
}

/**
 * Executes one fire of an Agenda job: loads the current cron job, claims the run, runs the
 * type's handler and records the outcome on the run and the job. Never throws for a handler
 * failure: the failure is the run's result, not Agenda's.
 */
export async function executeFire(deps: RunnerDeps, type: JobType, agendaJob: Job<AgendaJobData>): Promise<void> {
  const { models } = deps;
  const data = agendaJob.attrs.data;
  const startedAt = new Date();
  const log = deps.logger.child({ jobId: data.jobId, type: type.name, ...(data.runId ? { runId: data.runId } : {}) });

  const job = await models.CronJob.findById(data.jobId).lean();
  if (!job) {
    log.warn('cron job no longer exists; dropping its Agenda job');
    await agendaJob.remove();
    return;
  }
  if (!data.runId && !job.enabled) {
    log.info('cron job is paused; fire ignored');
    return;
  }
  const run = await claim(deps, job, data, startedAt);
  if (!run) {
    log.info('run already claimed by another worker; skipped');
    return;
  }
  const runLog = log.child({ runId: String(run._id), scheduledFor: run.scheduledFor });
  runLog.info({ trigger: run.trigger }, 'run started');
  await models.CronJob.updateOne({ _id: job._id, enabled: true }, { $set: { status: 'running' } });

  let status: 'succeeded' | 'failed' = 'succeeded';
  let error: string | null = null;
  let result: Record<string, unknown> | null = null;
  try {
    const parsed = type.payload.safeParse(job.payload);
    if (!parsed.success) {
      throw new Error(`stored payload is invalid for ${type.name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    const payload = parsed.data;
    result = await type.handler(payload, {
      runId: String(run._id),
      jobId: String(job._id),
      ownerId: job.ownerId,
      scheduledFor: run.scheduledFor,
      trigger: run.trigger,
      logger: runLog,
      conn: deps.conn,
      models,
      config: deps.config,
    });
  } catch (caught) {
    status = 'failed';
    error = caught instanceof Error ? caught.message : String(caught);
  }
  const finishedAt = new Date();
  const durationMs = finishedAt.getTime() - startedAt.getTime();
  await models.Run.updateOne({ _id: run._id }, { $set: { status, finishedAt, durationMs, error, result } });

  // Re-read: the owner may have paused, edited or deleted the job while it ran.
  const current = await models.CronJob.findById(job._id, { enabled: 1, cron: 1, timezone: 1 }).lean();
  if (current) {
    await models.CronJob.updateOne(
      { _id: job._id },
      {
        $set: {
          lastRunAt: startedAt,
          nextRunAt: current.enabled ? nextFire(current.cron, current.timezone) : null,
          status: current.enabled ? (status === 'failed' ? 'failed' : 'idle') : 'paused',
        },
      },
    );
  }
  if (status === 'failed') runLog.error({ durationMs, error }, 'run failed');
  else runLog.info({ durationMs, result }, 'run finished');
}
