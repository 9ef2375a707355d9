import { jobTypes, runPolicyFor } from '../jobs/registry.js';
import type { RunDoc } from '../models/run.model.js';
import { agendaJobs, queueRun } from './agenda.js';
import type { SchedulerDeps } from './deps.js';
import { deadWorkerReason, workerIsDead } from './liveness.js';
import { interrupt } from './run-outcome.js';

/**
 * Whether the worker that wrote a run at `at` is alive (src/scheduler/leases.ts); absent before
 * the worker has seen the others, when only heartbeats tell.
 */
export type Liveness = (worker: string, at: Date) => boolean;

/**
 * Runs left behind by dead workers or failed writes, set straight: dead workers' runs
 * interrupted, their queued runs handed to Agenda for any worker, orphaned queued runs queued
 * again, spent run jobs removed. Unassigned queued runs younger than `orphanAgeMs` are left to
 * the request or fire still creating them.
 */
export async function recoverRuns(deps: SchedulerDeps, orphanAgeMs: number, alive?: Liveness) {
  const interrupted = await sweepDeadRuns(deps, alive);
  const requeued = await requeueOrphanedRuns(deps, orphanAgeMs, alive);
  const removed = await removeSpentRunJobs(deps);
  if (interrupted || requeued || removed) deps.logger.info({ interrupted, requeued, removed }, 'runs recovered');
  return { interrupted, requeued, removed };
}

/**
 * Runs whose worker died: a worker no longer alive (seconds after it stopped renewing), or a
 * heartbeat older than the type's lock lifetime (a handler stuck in a live worker), makes them
 * `interrupted`. Returns how many.
 */
async function sweepDeadRuns(deps: SchedulerDeps, alive?: Liveness): Promise<number> {
  const running = await deps.models.Run.find(
    { status: 'running' },
    { jobId: 1, type: 1, trigger: 1, startedAt: 1, heartbeatAt: 1, attempts: 1, worker: 1 },
  ).lean<RunDoc[]>();
  let interrupted = 0;
  for (const run of running) {
    const gone = alive && run.worker && run.startedAt && !alive(run.worker, run.startedAt);
    if (!gone && !workerIsDead(run, runPolicyFor(run.type, deps.config).lockLifetimeMs)) continue;
    if (await interrupt(deps, run, deadWorkerReason(run.worker))) interrupted++;
  }
  return interrupted;
}

/**
 * Queued runs with no Agenda job to execute them (a worker died between creating the run and
 * queuing it, or the queuing failed with the database): queued again, or cancelled when their
 * job is gone.
 */
async function requeueOrphanedRuns(
  { agenda, conn, models }: SchedulerDeps,
  minAgeMs: number,
  alive?: Liveness,
): Promise<number> {
  const queued = await models.Run.find({ status: 'queued' }, { jobId: 1, type: 1, createdAt: 1, worker: 1 }).lean();
  let requeued = 0;
  for (const run of queued) {
    const jobId = String(run.jobId);
    const runId = String(run._id);
    if (run.worker) {
      // Queued by a fire for its own worker to execute: another takes it only once that one is gone.
      if (!alive || alive(run.worker, run.createdAt)) continue;
      const { modifiedCount } = await models.Run.updateOne(
        { _id: run._id, status: 'queued', worker: run.worker },
        { $set: { worker: null } },
      );
      if (modifiedCount) {
        await queueRun(agenda, { id: jobId, type: run.type }, runId);
        requeued++;
      }
      continue;
    }
    if (run.createdAt.getTime() >= Date.now() - minAgeMs) continue;
    const pending = await agendaJobs(conn).findOne({ 'data.jobId': jobId, 'data.runId': runId });
    if (pending?.nextRunAt) continue; // Agenda will deliver it, an expired lock included
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

/**
 * One-off run jobs Agenda kept after their processor failed (it removes only successful ones):
 * done, unlocked and never due again. Their runs were recorded, or are swept as interrupted.
 */
async function removeSpentRunJobs({ conn }: SchedulerDeps): Promise<number> {
  const { deletedCount } = await agendaJobs(conn).deleteMany({
    // Run jobs are named by their type: the names lead Agenda's index, so this is no collection scan.
    name: { $in: jobTypes.map((t) => t.name) },
    'data.runId': { $exists: true },
    nextRunAt: null,
    lockedAt: null,
  });
  return deletedCount;
}
