import type { Connection } from 'mongoose';
import type { Env } from '../env.js';
import { runPolicyOf } from '../jobs/job-type.js';
import { jobTypes } from '../jobs/registry.js';
import { sleep } from '../lib/async.js';
import type { Logger } from '../lib/logger.js';
import { watchWorker } from '../lib/metrics.js';
import { ensureIndexes, models } from '../models/index.js';
import { coalesceLockChains, createAgenda, lastPollAt } from './agenda.js';
import type { RunJobData, SchedulerDeps } from './deps.js';
import { DISPATCH_JOB, runDispatcher } from './dispatch.js';
import { reconcile } from './reconcile.js';
import { recoverRuns } from './recovery.js';
import { type ActiveRun, executeRun, interruptActive } from './runner.js';
import { CronJobService } from './service.js';

/**
 * The scheduler module on one connection: the service the API delegates to and, when
 * started, an Agenda worker that fires the cron jobs' slots and executes their runs.
 */
export async function openScheduler(conn: Connection, config: Env, logger: Logger) {
  const m = models(conn);
  await ensureIndexes(m);
  const agenda = await createAgenda(conn, config);
  // Agenda emits 'error' on database trouble; an EventEmitter without a listener would crash the process.
  agenda.on('error', (error) => logger.warn({ err: error }, 'agenda error'));
  const deps: SchedulerDeps = { agenda, conn, models: m, config, logger };
  const service = new CronJobService(deps);
  const repair = () => reconcile(deps);
  /** Runs this process is executing, for shutdown. */
  const active = new Map<string, ActiveRun>();
  const shortestLock = Math.min(...jobTypes.map((t) => runPolicyOf(t, config).lockLifetimeMs));
  const recover = () => recoverRuns(deps, shortestLock + config.AGENDA_PROCESS_EVERY_MS);

  let working = false;
  /** Ends this worker's dispatcher loop, should it hold the dispatcher. */
  let dispatching = new AbortController();
  /** Whether this worker holds the dispatcher now (fires every schedule); one worker does at a time. */
  let holdsDispatcher = false;
  let unwatch = () => {};
  const timers: NodeJS.Timeout[] = [];
  const inFlight = new Set<Promise<unknown>>();
  /** Runs `task` every `ms` without overlapping itself; stop() waits for a pass in progress. */
  const every = (ms: number, name: string, task: () => Promise<unknown>) => {
    let running: Promise<unknown> | undefined;
    const timer = setInterval(() => {
      if (running) return;
      running = task()
        .catch((error) => logger.warn({ err: error }, `${name} failed`))
        .finally(() => {
          inFlight.delete(running!);
          running = undefined;
        });
      inFlight.add(running);
    }, ms);
    timer.unref();
    timers.push(timer);
  };

  /** What /healthz and the worker gauges report: is it taking work, how busy, and when Agenda last polled. */
  const status = (): WorkerStatus => ({
    working,
    agendaRunning: agenda.isActiveJobProcessor(),
    runsInProgress: active.size,
    holdsDispatcher,
    lastPollAt: lastPollAt(agenda),
  });

  return {
    models: m,
    agenda,
    service,
    reconcile: repair,
    recover,

    /** Defines the processors, repairs schedules and runs, and starts taking work. */
    async startWorker() {
      if (working) return;
      dispatching = new AbortController();
      const { signal } = dispatching;
      const dispatch = async (job: Parameters<typeof runDispatcher>[1]) => {
        holdsDispatcher = true;
        try {
          await runDispatcher(deps, job, signal, shortestLock);
        } finally {
          holdsDispatcher = false;
        }
      };
      agenda.define(DISPATCH_JOB, dispatch, {
        // A worker that dies holding the dispatcher blocks every schedule for this long: no
        // longer than the shortest lock of any type, as the policy promises.
        lockLifetime: shortestLock,
        // One at a time, and never a second copy locked in waiting (a non-atomic lock can leave two).
        concurrency: 1,
        lockLimit: 1,
      });
      for (const type of jobTypes) {
        agenda.define<RunJobData>(type.name, (job) => executeRun(deps, job, active), {
          lockLifetime: runPolicyOf(type, config).lockLifetimeMs,
          concurrency: 10,
          removeOnComplete: true,
        });
      }
      await repair();
      await recover();
      await agenda.start();
      coalesceLockChains(agenda);
      working = true;
      unwatch = watchWorker(config.WORKER_NAME, status);
      if (config.RECONCILE_INTERVAL_MS > 0) every(config.RECONCILE_INTERVAL_MS, 'reconcile', repair);
      every(Math.max(1000, Math.floor(shortestLock / 2)), 'run recovery', recover);
      logger.info({ worker: config.WORKER_NAME, types: jobTypes.map((t) => t.name) }, 'worker started');
    },

    status,

    /**
     * Stops taking work (unlocking fetched jobs that had not started) and waits up to
     * `timeoutMs` for the runs in progress to finish, Agenda's own last writes included (the
     * unlock, the removal of a finished one-off job), before the caller closes the database.
     * Runs still going at the deadline are aborted and recorded as interrupted, and their Agenda
     * jobs removed, so nothing is left locked.
     */
    async stop(timeoutMs: number) {
      if (!working) return;
      working = false;
      unwatch();
      for (const timer of timers.splice(0)) clearInterval(timer);
      dispatching.abort();
      // Agenda's list of fires in progress is the only one that also holds a fire still saving
      // its start, before our processor is called; Agenda keeps it private and drops its
      // processor on stop(), so the reference is taken first (agenda is pinned at 6.2.6).
      const processor = (agenda as unknown as { jobProcessor?: { runningJobs: unknown[] } }).jobProcessor;
      const processing = () => (processor?.runningJobs.length ?? 0) > 0;
      await agenda.stop(false);
      const deadline = Date.now() + timeoutMs;
      while (processing() && Date.now() < deadline) await sleep(50);
      await Promise.all(inFlight);
      if (active.size) {
        const reason = `the worker shut down before the run finished (drain time ${timeoutMs} ms)`;
        await interruptActive(deps, active, reason);
        // Let the aborted processors return, so their last writes do not meet a closed connection.
        const settle = Date.now() + 1000;
        while (processing() && Date.now() < settle) await sleep(20);
      }
    },
  };
}

export interface WorkerStatus {
  working: boolean;
  agendaRunning: boolean;
  runsInProgress: number;
  holdsDispatcher: boolean;
  /** Epoch ms of Agenda's last poll for work (every AGENDA_PROCESS_EVERY_MS while running). */
  lastPollAt?: number;
}

export type Scheduler = Awaited<ReturnType<typeof openScheduler>>;
