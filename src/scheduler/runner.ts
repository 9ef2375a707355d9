import type { Job } from 'agenda';
import type { Types } from 'mongoose';
import { isDuplicateKey } from '../db/index.js';
import { PermanentError, type RunPolicy } from '../jobs/job-type.js';
import { runPolicyFor } from '../jobs/registry.js';
import { sleep } from '../lib/async.js';
import type { Logger } from '../lib/logger.js';
import { observeRun } from '../lib/metrics.js';
import type { JobDoc } from '../models/cron-job.model.js';
import type { RunDoc } from '../models/run.model.js';
import { AttemptTimeout, attemptOnce } from './attempt.js';
import { NOT_AN_EDIT, type RunJobData, type SchedulerDeps } from './deps.js';
import { deadWorkerReason, silentTooLong, workerIsDead } from './liveness.js';
import { type Finished, interrupt, type Outcome, type RunWrites } from './run-outcome.js';

/** A run being executed in this process; shutdown interrupts what is left of them at its deadline. */
export interface ActiveRun {
  runId: Types.ObjectId;
  attempts: number;
  controller: AbortController;
  /** The Agenda job delivering a manual or recovered run; runs a fire queued here have none. */
  agendaJob?: Job<RunJobData>;
}

/** What executing runs works with: the scheduler's parts, the runs going in this process, the grouped writes. */
export interface RunnerDeps extends SchedulerDeps {
  active: Map<string, ActiveRun>;
  writes: RunWrites;
}

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Takes the run for this worker: inserting its claim document is the lock, since a status
 * update may be a read then a write (src/db/quirks.ts). A claim left by a dead worker is recognised by age
 * (a run it started, by its heartbeat): the run is then marked `interrupted`, or, when it never
 * started, the stale claim is replaced. Returns the run when this worker should execute it.
 */
async function claim(deps: SchedulerDeps, run: RunDoc, policy: RunPolicy, log: Logger): Promise<RunDoc | undefined> {
  const { models, config } = deps;
  const worker = config.WORKER_NAME;
  for (let tries = 0; tries < 2; tries++) {
    try {
      await models.RunClaim.create({ _id: run._id, worker });
      const now = new Date();
      return (
        (await models.Run.findOneAndUpdate(
          { _id: run._id, status: 'queued' },
          { $set: { status: 'running', startedAt: run.startedAt ?? now, heartbeatAt: now, worker } },
          { returnDocument: 'after' },
        ).lean<RunDoc>()) ?? undefined
      );
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    const held = await models.RunClaim.findById(run._id).lean<{ worker: string; createdAt: Date }>();
    const current = await models.Run.findById(run._id).lean<RunDoc>();
    if (!held || !current) return undefined;
    if (current.status === 'running') {
      if (workerIsDead(current, policy.lockLifetimeMs))
        await interrupt(deps, current, deadWorkerReason(current.worker ?? held.worker));
      return undefined;
    }
    if (current.status !== 'queued' || !silentTooLong(held.createdAt, policy.lockLifetimeMs)) return undefined;
    log.warn({ worker: held.worker }, 'replacing the claim of a worker that died before starting the run');
    await models.RunClaim.deleteOne({ _id: run._id, worker: held.worker, createdAt: held.createdAt });
  }
  return undefined;
}

/**
 * Executes one run handed over by Agenda: claims it, runs the handler of the job's current type
 * with the type's retries, backoff and per-attempt timeout, sends heartbeats meanwhile, and
 * records the outcome on the run and the job. A handler failure is the run's result, not
 * Agenda's: this only throws when the database does.
 */
export async function executeRun(deps: RunnerDeps, agendaJob: Job<RunJobData>): Promise<void> {
  // A non-atomic findAndModify (src/db/quirks.ts) can hand a worker the same Agenda job twice (a poll and
  // a notification racing); the second is dropped here, before any database work.
  const key = `${deps.config.WORKER_NAME}:${agendaJob.attrs.data.runId}`;
  if (inProcess.has(key)) return;
  inProcess.add(key);
  try {
    await executeClaimed(deps, agendaJob);
  } finally {
    inProcess.delete(key);
  }
}

/** Runs each worker of this process is claiming or executing, as worker:runId. */
const inProcess = new Set<string>();

async function executeClaimed(deps: RunnerDeps, agendaJob: Job<RunJobData>): Promise<void> {
  const { models, config } = deps;
  const { jobId, runId } = agendaJob.attrs.data;
  const log = deps.logger.child({ jobId, runId });
  const queued = await models.Run.findById(runId).lean<RunDoc>();
  if (!queued || (queued.status !== 'queued' && queued.status !== 'running')) return;
  const policy = runPolicyFor(queued.type, config);
  const run = await claim(deps, queued, policy, log);
  if (!run) {
    log.info('run taken by another worker, finished, or interrupted; nothing to do');
    return;
  }
  await models.CronJob.updateOne({ _id: run.jobId, enabled: true }, { $set: { status: 'running' } }, NOT_AN_EDIT);
  await execute(deps, run, { agendaJob, policy, log });
}

/**
 * Executes a run a fire of this worker queued and marked running (src/scheduler/local-runs.ts),
 * with the job as that fire read it: its first attempt reads nothing more.
 */
export async function executeLocal(deps: RunnerDeps, run: RunDoc, job: JobDoc): Promise<void> {
  const log = deps.logger.child({ jobId: String(run.jobId), runId: String(run._id) });
  await execute(deps, run, { policy: runPolicyFor(run.type, deps.config), log, job, firstAttemptRecorded: true });
}

interface Execution {
  policy: RunPolicy;
  log: Logger;
  agendaJob?: Job<RunJobData>;
  /** The job as read when the run was queued, for the first attempt. */
  job?: JobDoc;
  /** The run's start already counted attempt 1. */
  firstAttemptRecorded?: boolean;
}

/** Runs the attempts of a run listed among this process's active runs, for shutdown to find. */
async function execute(deps: RunnerDeps, run: RunDoc, execution: Execution) {
  const entry: ActiveRun = {
    runId: run._id,
    attempts: run.attempts,
    controller: new AbortController(),
    agendaJob: execution.agendaJob,
  };
  const key = String(run._id);
  deps.active.set(key, entry);
  try {
    await attempts(deps, run, entry, execution);
  } finally {
    deps.active.delete(key);
  }
}

async function attempts(
  deps: RunnerDeps,
  run: RunDoc,
  entry: ActiveRun,
  { agendaJob, policy, log, job, firstAttemptRecorded }: Execution,
) {
  const { models } = deps;
  const runLog = log.child({ type: run.type, scheduledFor: run.scheduledFor, trigger: run.trigger });
  runLog.info({ lagMs: run.startedAt!.getTime() - run.scheduledFor.getTime() }, 'run started');

  // Heartbeats keep the claim and the Agenda lock fresh while the handler works.
  const beat = setInterval(
    () => {
      const heartbeatAt = new Date();
      void Promise.all([
        models.Run.updateOne({ _id: run._id, status: 'running' }, { $set: { heartbeatAt } }),
        agendaJob?.touch(),
      ]).catch((error) => runLog.warn({ err: error }, 'heartbeat failed'));
    },
    Math.max(100, Math.floor(policy.lockLifetimeMs / 4)),
  );

  let outcome: Outcome = 'failed';
  let error: string | null = null;
  let result: Record<string, unknown> | null = null;
  let lastError: unknown;
  try {
    const first = firstAttemptRecorded ? 1 : run.attempts + 1;
    for (let attempt = first; attempt <= policy.maxAttempts; attempt++) {
      entry.attempts = attempt;
      if (attempt > run.attempts)
        await models.Run.updateOne(
          { _id: run._id, status: 'running' },
          { $set: { attempts: attempt, heartbeatAt: new Date() } },
        );
      try {
        const read = attempt === first ? job : undefined;
        result = await attemptOnce(deps, run, attempt, policy, entry.controller.signal, runLog, read);
        outcome = 'succeeded';
        error = null;
        break;
      } catch (caught) {
        lastError = caught;
        outcome = caught instanceof AttemptTimeout ? 'timedOut' : 'failed';
        error =
          policy.maxAttempts > 1
            ? `attempt ${attempt} of ${policy.maxAttempts}: ${errorMessage(caught)}`
            : errorMessage(caught);
        runLog.warn({ attempt, error }, 'attempt failed');
      }
      if (entry.controller.signal.aborted || attempt === policy.maxAttempts || lastError instanceof PermanentError)
        break;
      await sleep(policy.backoffMs * 2 ** (attempt - 1), entry.controller.signal);
      if (entry.controller.signal.aborted) break;
    }
  } finally {
    clearInterval(beat);
  }
  // Only shutdown aborts a run, and it records the run as interrupted before it does.
  if (entry.controller.signal.aborted) return;
  const held = await deps.writes.finish({ run, outcome: outcome as Finished['outcome'], error, result });
  // Another worker judged this one dead and recorded the run as interrupted meanwhile.
  if (!held) return;
  // Fire lag only for runs on time: a catch-up's lateness is the downtime, not the scheduler's.
  observeRun(
    run.type,
    outcome,
    run.trigger === 'schedule' ? run.startedAt!.getTime() - run.scheduledFor.getTime() : undefined,
  );
  const durationMs = Date.now() - run.startedAt!.getTime();
  if (outcome === 'succeeded') runLog.info({ durationMs, result, attempts: entry.attempts }, 'run finished');
  else runLog.error({ durationMs, error, attempts: entry.attempts, outcome }, 'run failed');
}

/**
 * At the shutdown deadline: records the runs still going in this process as interrupted, aborts
 * their handlers and removes their Agenda jobs, so nothing is left locked.
 */
export async function interruptActive(deps: RunnerDeps, reason: string) {
  const left = [...deps.active.values()];
  deps.logger.warn({ running: left.length }, 'shutdown deadline: interrupting runs still going');
  for (const run of left) {
    // Recorded first, then aborted: the aborted run then finds nothing left to record.
    const current = await deps.models.Run.findById(run.runId, {
      heartbeatAt: 1,
      startedAt: 1,
      jobId: 1,
      type: 1,
      trigger: 1,
      attempts: 1,
    }).lean();
    if (current) await interrupt(deps, current, reason);
    run.controller.abort(new Error(reason));
    // The run is over as far as anyone is concerned: its Agenda job must not wait for lock expiry.
    await run.agendaJob
      ?.remove()
      .catch((error: unknown) =>
        deps.logger.warn({ err: error }, 'could not remove the Agenda job of an interrupted run'),
      );
  }
}
