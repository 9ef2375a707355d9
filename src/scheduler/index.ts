import type { Connection } from 'mongoose';
import { createMissingCollections } from '../db/index.js';
import type { Env } from '../env.js';
import { runPolicyOf } from '../jobs/job-type.js';
import { jobTypes } from '../jobs/registry.js';
import { sleep } from '../lib/async.js';
import type { Logger } from '../lib/logger.js';
import { watchWorker } from '../lib/metrics.js';
import { ensureIndexes, models } from '../models/index.js';
import { coalesceLockChains, createAgenda, lastPollAt } from './agenda.js';
import type { RunJobData, SchedulerDeps } from './deps.js';
import { runTicks } from './dispatch.js';
import { PartitionLeases } from './leases.js';
import { LocalRuns } from './local-runs.js';
import { reconcile } from './reconcile.js';
import { recoverRuns } from './recovery.js';
import { RETENTION_COLLECTION, sweepHistory } from './retention.js';
import { runWrites } from './run-outcome.js';
import { type ActiveRun, executeRun, interruptActive, type RunnerDeps } from './runner.js';
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
  const runner: RunnerDeps = { ...deps, active, writes: runWrites(deps) };
  const shortestLock = Math.min(...jobTypes.map((t) => runPolicyOf(t, config).lockLifetimeMs));
  const leases = new PartitionLeases(conn, {
    worker: config.WORKER_NAME,
    partitions: config.SCHEDULER_PARTITIONS,
    leaseMs: config.SCHEDULER_LEASE_MS,
    logger,
  });
  const local = new LocalRuns(runner, config.RUN_CONCURRENCY);
  const alive = (worker: string, at: Date) => leases.isAlive(worker, at);
  const recover = () =>
    recoverRuns(deps, shortestLock + config.AGENDA_PROCESS_EVERY_MS, leases.ready ? alive : undefined);

  let working = false;
  /** Ends this worker's ticks and lease rounds. */
  let firing = new AbortController();
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
    runsWaiting: local.size.waiting,
    partitionsHeld: leases.current().length,
    partitions: config.SCHEDULER_PARTITIONS,
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
      firing = new AbortController();
      const { signal } = firing;
      for (const type of jobTypes) {
        agenda.define<RunJobData>(type.name, (job) => executeRun(runner, job), {
          lockLifetime: runPolicyOf(type, config).lockLifetimeMs,
          concurrency: 10,
          removeOnComplete: true,
        });
      }
      await repair();
      // The deleted-jobs collection is the models' (ensureIndexes made it); this one is the worker's.
      await createMissingCollections(conn, [RETENTION_COLLECTION]);
      await leases.prepare();
      await leases.round();
      await recover();
      await agenda.start();
      coalesceLockChains(agenda);
      working = true;
      unwatch = watchWorker(config.WORKER_NAME, status);
      if (config.RECONCILE_INTERVAL_MS > 0) every(config.RECONCILE_INTERVAL_MS, 'reconcile', repair);
      every(leases.intervalMs, 'lease round', () => leases.round());
      // One worker sweeps (the holder of partition 0), as often as a lease lasts: a dead worker's
      // runs are set straight seconds after its partitions move.
      every(config.SCHEDULER_LEASE_MS, 'run recovery', async () => {
        if (leases.current().includes(0)) await recover();
      });
      // History retention, by the same one worker: a pass is bounded, and stops with the worker.
      every(config.HISTORY_SWEEP_INTERVAL_MS, 'history retention', async () => {
        if (leases.current().includes(0)) await sweepHistory(deps, new Date(), { signal });
      });
      const ticking = runTicks(
        deps,
        () => leases.current(),
        async (runs) => local.enqueue(runs),
        signal,
      );
      inFlight.add(ticking);
      void ticking.finally(() => inFlight.delete(ticking));
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
      firing.abort();
      await Promise.all(inFlight);
      // Partitions go back first, so another worker fires them while this one drains.
      await leases.release().catch((error) => logger.warn({ err: error }, 'could not give the partitions back'));
      const handedOver = await local.stop().catch((error) => {
        logger.warn({ err: error }, 'could not hand the waiting runs over');
        return 0;
      });
      if (handedOver) logger.info({ runs: handedOver }, 'runs not started handed to the other workers');
      // Agenda's list of fires in progress is the only one that also holds a fire still saving
      // its start, before our processor is called; Agenda keeps it private and drops its
      // processor on stop(), so the reference is taken first (agenda is pinned at 6.2.6).
      const processor = (agenda as unknown as { jobProcessor?: { runningJobs: unknown[] } }).jobProcessor;
      // Runs this worker's fires queued are executed outside Agenda: waited for as well.
      const processing = () => (processor?.runningJobs.length ?? 0) > 0 || local.size.going > 0;
      await agenda.stop(false);
      const deadline = Date.now() + timeoutMs;
      while (processing() && Date.now() < deadline) await sleep(50);
      await Promise.all(inFlight);
      if (active.size) {
        const reason = `the worker shut down before the run finished (drain time ${timeoutMs} ms)`;
        await interruptActive(runner, reason);
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
  /** Runs this worker's fires queued that wait for a free slot (RUN_CONCURRENCY). */
  runsWaiting: number;
  /** Firing partitions this worker holds, of `partitions`. */
  partitionsHeld: number;
  partitions: number;
  /** Epoch ms of Agenda's last poll for work (every AGENDA_PROCESS_EVERY_MS while running). */
  lastPollAt?: number;
}

export type Scheduler = Awaited<ReturnType<typeof openScheduler>>;
