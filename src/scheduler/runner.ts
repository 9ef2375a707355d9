import type { Job } from 'agenda';
import type { Types } from 'mongoose';
import { type JobType, PermanentError, type RunPolicy, runPolicyOf } from '../jobs/job-type.js';
import { getJobType } from '../jobs/registry.js';
import { sleep } from '../lib/async.js';
import { isDuplicateKey } from '../lib/db.js';
import type { Logger } from '../lib/logger.js';
import { observeRun } from '../lib/metrics.js';
import type { Run } from '../models/run.model.js';
import type { RunJobData, SchedulerDeps } from './fire.js';

type RunDoc = Run & { _id: Types.ObjectId };
type JobDoc = {
  _id: Types.ObjectId;
  ownerId: string;
  type: string;
  cron: string;
  timezone: string;
  enabled: boolean;
  payload: unknown;
};

/** A run's outcome as the runner records it. */
export type Outcome = 'succeeded' | 'failed' | 'timedOut' | 'interrupted';

/**
 * Run bookkeeping leaves `updatedAt` alone: it stands for the owner's last edit, and the API's
 * edit-conflict check compares it, so a run finishing must not make an edit look stale.
 */
const RUN_STATE = { timestamps: false } as const;

/** A run being executed in this process; shutdown interrupts what is left of them at its deadline. */
export interface ActiveRun {
  runId: Types.ObjectId;
  jobId: Types.ObjectId;
  trigger: Run['trigger'];
  startedAt: Date;
  attempts: number;
  controller: AbortController;
  agendaJob: Job<RunJobData>;
  /** Settles when the run has been recorded. */
  done: Promise<void>;
}

const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));

class AttemptTimeout extends Error {}

/**
 * Takes the run for this worker: inserting its claim document is the lock, since a status
 * update is a read then a write on FerretDB. A claim left by a dead worker is recognised by age
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
    const deadline = Date.now() - policy.lockLifetimeMs;
    if (current.status === 'running') {
      if ((current.heartbeatAt ?? current.startedAt ?? new Date()).getTime() > deadline) return undefined; // alive elsewhere
      await interrupt(
        deps,
        current,
        `worker ${current.worker ?? held.worker} stopped sending heartbeats during the run`,
      );
      return undefined;
    }
    if (current.status !== 'queued' || held.createdAt.getTime() > deadline) return undefined;
    log.warn({ worker: held.worker }, 'replacing the claim of a worker that died before starting the run');
    await models.RunClaim.deleteOne({ _id: run._id, worker: held.worker, createdAt: held.createdAt });
  }
  return undefined;
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
 * Executes one run handed over by Agenda: claims it, runs the handler of the job's current type
 * with the type's retries, backoff and per-attempt timeout, sends heartbeats meanwhile, and
 * records the outcome on the run and the job. A handler failure is the run's result, not
 * Agenda's: this only throws when the database does.
 */
export async function executeRun(
  deps: SchedulerDeps,
  agendaJob: Job<RunJobData>,
  active: Map<string, ActiveRun>,
): Promise<void> {
  // FerretDB's non-atomic findAndModify can hand a worker the same Agenda job twice (a poll and
  // a notification racing); the second is dropped here, before any database work.
  const key = `${deps.config.WORKER_NAME}:${agendaJob.attrs.data.runId}`;
  if (inProcess.has(key)) return;
  inProcess.add(key);
  try {
    await executeClaimed(deps, agendaJob, active);
  } finally {
    inProcess.delete(key);
  }
}

/** Runs each worker of this process is claiming or executing, as worker:runId. */
const inProcess = new Set<string>();

async function executeClaimed(
  deps: SchedulerDeps,
  agendaJob: Job<RunJobData>,
  active: Map<string, ActiveRun>,
): Promise<void> {
  const { models, config } = deps;
  const { jobId, runId } = agendaJob.attrs.data;
  const log = deps.logger.child({ jobId, runId });
  const queued = await models.Run.findById(runId).lean<RunDoc>();
  if (!queued || (queued.status !== 'queued' && queued.status !== 'running')) return;
  const type = getJobType(queued.type);
  const policy = runPolicyOf(type ?? { name: queued.type }, config);
  const run = await claim(deps, queued, policy, log);
  if (!run) {
    log.info('run taken by another worker, finished, or interrupted; nothing to do');
    return;
  }
  let settle!: () => void;
  const entry: ActiveRun = {
    runId: run._id,
    jobId: run.jobId,
    trigger: run.trigger,
    startedAt: run.startedAt!,
    attempts: run.attempts,
    controller: new AbortController(),
    agendaJob,
    done: new Promise<void>((resolve) => (settle = resolve)),
  };
  active.set(runId, entry);
  try {
    await execute(deps, agendaJob, run, entry, policy, log);
  } finally {
    active.delete(runId);
    settle();
  }
}

async function execute(
  deps: SchedulerDeps,
  agendaJob: Job<RunJobData>,
  run: RunDoc,
  entry: ActiveRun,
  policy: RunPolicy,
  log: Logger,
) {
  const { models } = deps;
  const runLog = log.child({ type: run.type, scheduledFor: run.scheduledFor, trigger: run.trigger });
  await models.CronJob.updateOne({ _id: run.jobId, enabled: true }, { $set: { status: 'running' } }, RUN_STATE);
  runLog.info({ lagMs: run.startedAt!.getTime() - run.scheduledFor.getTime() }, 'run started');

  // Heartbeats keep the claim and the Agenda lock fresh while the handler works.
  const beat = setInterval(
    () => {
      const heartbeatAt = new Date();
      void Promise.all([
        models.Run.updateOne({ _id: run._id, status: 'running' }, { $set: { heartbeatAt } }),
        agendaJob.touch(),
      ]).catch((error) => runLog.warn({ err: error }, 'heartbeat failed'));
    },
    Math.max(100, Math.floor(policy.lockLifetimeMs / 4)),
  );

  let outcome: Outcome = 'failed';
  let error: string | null = null;
  let result: Record<string, unknown> | null = null;
  let lastError: unknown;
  try {
    for (let attempt = run.attempts + 1; attempt <= policy.maxAttempts; attempt++) {
      entry.attempts = attempt;
      await models.Run.updateOne(
        { _id: run._id, status: 'running' },
        { $set: { attempts: attempt, heartbeatAt: new Date() } },
      );
      try {
        result = await attemptOnce(deps, run, attempt, policy, entry.controller.signal, runLog);
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
  await finish(deps, run, outcome, error, result);
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

/** One call of the handler, cut off after the type's timeout; throws AttemptTimeout then. */
async function attemptOnce(
  deps: SchedulerDeps,
  run: RunDoc,
  attempt: number,
  policy: RunPolicy,
  stop: AbortSignal,
  log: Logger,
) {
  const job = await deps.models.CronJob.findById(run.jobId).lean<JobDoc>();
  if (!job) throw new PermanentError('the job was deleted');
  const type = getJobType(job.type) as JobType | undefined;
  if (!type) throw new PermanentError(`job type ${job.type} is no longer registered`);
  const parsed = type.payload.safeParse(job.payload);
  if (!parsed.success) {
    throw new PermanentError(
      `stored payload is invalid for ${type.name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const controller = new AbortController();
  const onStop = () => controller.abort(stop.reason);
  stop.addEventListener('abort', onStop);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new AttemptTimeout(`timed out after ${policy.timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, policy.timeoutMs);
  });
  try {
    const handling = type.handler(parsed.data, {
      runId: String(run._id),
      jobId: String(job._id),
      ownerId: job.ownerId,
      scheduledFor: run.scheduledFor,
      trigger: run.trigger,
      attempt,
      signal: controller.signal,
      logger: log.child({ attempt }),
      conn: deps.conn,
      models: deps.models,
      config: deps.config,
    });
    // A handler that ignores the signal goes on in the background; its result is dropped.
    handling.catch(() => undefined);
    const stopped = new Promise<never>((_, reject) =>
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }),
    );
    stopped.catch(() => undefined);
    return await Promise.race([handling, timedOut, stopped]);
  } finally {
    clearTimeout(timer);
    stop.removeEventListener('abort', onStop);
  }
}

/** Writes a run's outcome, then the job's state after it. */
async function finish(
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
 * The job's state after a run: last run, status, next fire, and the count of scheduled runs
 * failed in a row, which pauses the job at the type's threshold. Each update is conditional on
 * `enabled`, so a pause that lands while the run goes on stays a pause.
 */
async function recordJob(
  deps: SchedulerDeps,
  jobId: Types.ObjectId,
  trigger: Run['trigger'],
  outcome: Outcome,
  error: string | null,
  startedAt: Date,
) {
  const { models, config } = deps;
  const job = await models.CronJob.findById(jobId, { type: 1, consecutiveFailures: 1 }).lean();
  if (!job) return;
  const counts = trigger !== 'manual';
  const failures = outcome === 'succeeded' ? 0 : (job.consecutiveFailures ?? 0) + (counts ? 1 : 0);
  const threshold = runPolicyOf(getJobType(job.type) ?? { name: job.type }, config).pauseAfterFailures;
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
      RUN_STATE,
    );
    if (modifiedCount) {
      deps.logger.warn({ jobId: String(jobId), failures }, 'job paused after repeated failures');
      return;
    }
  }
  await models.CronJob.updateOne({ _id: jobId, enabled: true }, { $set: set }, RUN_STATE);
  await models.CronJob.updateOne(
    { _id: jobId, enabled: false },
    { $set: { lastRunAt: startedAt, status: 'paused', nextRunAt: null } },
    RUN_STATE,
  );
}

/** Runs whose worker died: a stale heartbeat makes them `interrupted`. Returns how many. */
export async function sweepDeadRuns(deps: SchedulerDeps): Promise<number> {
  const { models, config } = deps;
  const running = await models.Run.find(
    { status: 'running' },
    { jobId: 1, type: 1, trigger: 1, startedAt: 1, heartbeatAt: 1, attempts: 1, worker: 1 },
  ).lean<RunDoc[]>();
  let interrupted = 0;
  for (const run of running) {
    const { lockLifetimeMs } = runPolicyOf(getJobType(run.type) ?? { name: run.type }, config);
    const last = run.heartbeatAt ?? run.startedAt;
    if (last && last.getTime() < Date.now() - lockLifetimeMs) {
      if (await interrupt(deps, run, `worker ${run.worker ?? '?'} stopped sending heartbeats during the run`))
        interrupted++;
    }
  }
  return interrupted;
}
