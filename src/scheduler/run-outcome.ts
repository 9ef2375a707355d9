import mongoose, { type Types } from 'mongoose';
import { runPolicyFor } from '../jobs/registry.js';
import { groupCommit } from '../lib/group-commit.js';
import { observeRun } from '../lib/metrics.js';
import type { RunDoc } from '../models/run.model.js';
import { NOT_AN_EDIT, type SchedulerDeps } from './deps.js';

/** A run's outcome as the runner records it. */
export type Outcome = 'succeeded' | 'failed' | 'timedOut' | 'interrupted';

export interface Finished {
  run: Pick<RunDoc, '_id' | 'jobId' | 'trigger' | 'startedAt'>;
  outcome: Exclude<Outcome, 'interrupted'>;
  error: string | null;
  result: Record<string, unknown> | null;
}

/**
 * The writes of runs starting and finishing, grouped (src/lib/group-commit.ts): the runs that
 * start or finish together cost one bulk write of runs and one of jobs, not a few each.
 * Every write is conditional on the run's status, so a run another worker recorded meanwhile
 * (as interrupted, or cancelled) keeps that record; each caller learns whether its write held.
 */
export function runWrites(deps: SchedulerDeps) {
  return {
    /** Marks queued runs as running on this worker (attempt 1); false for a run no longer queued. */
    start: groupCommit(async (runs: RunDoc[]) => {
      const now = new Date();
      for (const run of runs) Object.assign(run, { status: 'running', startedAt: now, heartbeatAt: now, attempts: 1 });
      const ops = runs.map((run) => ({
        updateOne: {
          filter: { _id: run._id, status: 'queued' },
          update: { $set: { status: 'running', startedAt: now, heartbeatAt: now, worker: run.worker, attempts: 1 } },
        },
      }));
      return heldWrites(deps, ops, runs, 'running');
    }, WRITES),

    /** Records outcomes, then the jobs' state after them; false for a run no longer running. */
    finish: groupCommit(async (items: Finished[]) => {
      const finishedAt = new Date();
      const ops = items.map(({ run, outcome, error, result }) => ({
        updateOne: {
          filter: { _id: run._id, status: 'running' },
          update: {
            $set: {
              status: outcome,
              finishedAt,
              durationMs: finishedAt.getTime() - run.startedAt!.getTime(),
              error,
              result,
            },
          },
        },
      }));
      const held = await heldWrites(
        deps,
        ops,
        items.map((item) => item.run),
        (run) => items.find((item) => item.run._id.equals(run._id))!.outcome,
      );
      const succeeded = items.filter((item, i) => held[i] && item.outcome === 'succeeded');
      if (succeeded.length) await recordSuccesses(deps, succeeded);
      for (const [i, item] of items.entries())
        if (held[i] && item.outcome !== 'succeeded')
          await recordJob(deps, item.run.jobId, item.run.trigger, item.outcome, item.error, item.run.startedAt!);
      return held;
    }, WRITES),
  };
}

export type RunWrites = ReturnType<typeof runWrites>;

/** Four writes of each kind at once: FerretDB runs a write's statements one after the other. */
const WRITES = { parallel: 4 };

type RunUpdate = { updateOne: { filter: Record<string, unknown>; update: Record<string, unknown> } };

/**
 * Applies conditional updates of runs in one command and says which held. A bulk write reports
 * only how many changed; when that is fewer than asked (rare: another worker recorded some of
 * them first), the runs are read back to tell which now have the status written.
 */
async function heldWrites(
  { models }: SchedulerDeps,
  ops: RunUpdate[],
  runs: Pick<RunDoc, '_id'>[],
  status: string | ((run: Pick<RunDoc, '_id'>) => string),
): Promise<boolean[]> {
  const { modifiedCount } = await models.Run.bulkWrite(ops, { ordered: false });
  if (modifiedCount === ops.length) return runs.map(() => true);
  const now = await models.Run.find({ _id: mongoose.trusted({ $in: runs.map((r) => r._id) }) }, { status: 1 }).lean();
  const statusOf = new Map(now.map((run) => [String(run._id), run.status]));
  return runs.map((run) => statusOf.get(String(run._id)) === (typeof status === 'string' ? status : status(run)));
}

/**
 * The jobs' state after successful runs, in one bulk write: last run, status, failures reset.
 * A job paused (or deleted) meanwhile matches fewer than asked; then a second write gives the
 * paused ones their last run and keeps them saying paused.
 */
async function recordSuccesses(deps: SchedulerDeps, items: Finished[]) {
  const set = (enabled: boolean) =>
    items.map(({ run }) => ({
      updateOne: {
        filter: { _id: run.jobId, enabled },
        update: {
          $set: enabled
            ? { lastRunAt: run.startedAt, status: 'idle', consecutiveFailures: 0 }
            : { lastRunAt: run.startedAt, status: 'paused', nextRunAt: null },
        },
      },
    }));
  const { matchedCount } = await deps.models.CronJob.bulkWrite(set(true), { ordered: false, timestamps: false });
  if (matchedCount < items.length)
    await deps.models.CronJob.bulkWrite(set(false), { ordered: false, timestamps: false });
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
export async function recordJob(
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
