import type { Types } from 'mongoose';
import { runPolicyFor } from '../jobs/registry.js';
import { observeRun } from '../lib/metrics.js';
import type { RunDoc } from '../models/run.model.js';
import { NOT_AN_EDIT, type SchedulerDeps } from './deps.js';

/** A run's outcome as the runner records it. */
export type Outcome = 'succeeded' | 'failed' | 'timedOut' | 'interrupted';

/** Writes a run's outcome, then the job's state after it. */
export async function finish(
  deps: SchedulerDeps,
  run: RunDoc,
  outcome: Outcome,
  error: string | null,
  result: Record<string, unknown> | null,
) {
  const finishedAt = new Date();
  const { modifiedCount } = await deps.models.Run.updateOne(
    { _id: run._id, status: 'running' },
    {
      $set: { status: outcome, finishedAt, durationMs: finishedAt.getTime() - run.startedAt!.getTime(), error, result },
    },
  );
  // Another worker judged this one dead and recorded the run as interrupted meanwhile.
  if (!modifiedCount) return;
  await recordJob(deps, run.jobId, run.trigger, outcome, error, run.startedAt!);
}

/**
 * Marks a run whose worker is gone (or is shutting down past its deadline) as interrupted, if it
 * is still running with the heartbeat it was judged by, and sets its job straight.
 */
export async function interrupt(
  deps: SchedulerDeps,
  run: Pick<RunDoc, '_id' | 'jobId' | 'type' | 'trigger' | 'startedAt' | 'heartbeatAt' | 'attempts'>,
  reason: string,
): Promise<boolean> {
  const finishedAt = new Date();
  const { modifiedCount } = await deps.models.Run.updateOne(
    { _id: run._id, status: 'running', heartbeatAt: run.heartbeatAt },
    {
      $set: {
        status: 'interrupted',
        finishedAt,
        durationMs: run.startedAt ? finishedAt.getTime() - run.startedAt.getTime() : null,
        error: reason,
      },
    },
  );
  if (!modifiedCount) return false;
  deps.logger.warn({ runId: String(run._id), jobId: String(run.jobId), reason }, 'run interrupted');
  observeRun(run.type, 'interrupted');
  await recordJob(deps, run.jobId, run.trigger, 'interrupted', reason, run.startedAt ?? finishedAt);
  return true;
}

/**
 * The job's state after a run: last run, status, next fire, and the count of scheduled runs
 * failed in a row, which pauses the job at the type's threshold. Each update is conditional on
 * `enabled`, so a pause that lands while the run goes on stays a pause.
 */
async function recordJob(
  deps: SchedulerDeps,
  jobId: Types.ObjectId,
  trigger: RunDoc['trigger'],
  outcome: Outcome,
  error: string | null,
  startedAt: Date,
) {
  const { models, config } = deps;
  const job = await models.CronJob.findById(jobId, { type: 1, consecutiveFailures: 1 }).lean();
  if (!job) return;
  const counts = trigger !== 'manual';
  const failures = outcome === 'succeeded' ? 0 : job.consecutiveFailures + (counts ? 1 : 0);
  const threshold = runPolicyFor(job.type, config).pauseAfterFailures;
  const set = {
    lastRunAt: startedAt,
    status: outcome === 'succeeded' ? ('idle' as const) : ('failed' as const),
    ...(counts || outcome === 'succeeded' ? { consecutiveFailures: failures } : {}),
  };
  if (counts && threshold > 0 && failures >= threshold) {
    const pausedReason = `paused automatically after ${failures} failed runs in a row; last error: ${error ?? outcome}`;
    const { modifiedCount } = await models.CronJob.updateOne(
      { _id: jobId, enabled: true },
      { $set: { ...set, enabled: false, status: 'paused', nextRunAt: null, pausedReason } },
      NOT_AN_EDIT,
    );
    if (modifiedCount) {
      deps.logger.warn({ jobId: String(jobId), failures }, 'job paused after repeated failures');
      return;
    }
  }
  await models.CronJob.updateOne({ _id: jobId, enabled: true }, { $set: set }, NOT_AN_EDIT);
  await models.CronJob.updateOne(
    { _id: jobId, enabled: false },
    { $set: { lastRunAt: startedAt, status: 'paused', nextRunAt: null } },
    NOT_AN_EDIT,
  );
}
