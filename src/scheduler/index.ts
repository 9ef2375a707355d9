import type { Connection } from 'mongoose';
import type { Env } from '../env.js';
import type { JobType } from '../jobs/job-type.js';
import { jobTypes } from '../jobs/registry.js';
import type { Logger } from '../lib/logger.js';
import { ensureIndexes, models } from '../models/index.js';
import { createAgenda } from './agenda.js';
import { reconcile } from './agenda-jobs.js';
import { executeFire, type AgendaJobData } from './runner.js';
import { CronJobService } from './service.js';

/** Lock lifetime when a type sets none: how long a dead worker's run blocks its job. */
const DEFAULT_LOCK_LIFETIME_MS = 10 * 60 * 1000;

/**
 * The scheduler module on one connection: the service the API delegates to and, when
 * started, an Agenda worker executing the whitelisted types.
 */
export async function openScheduler(conn: Connection, config: Env, logger: Logger) {
  const m = models(conn);
  await ensureIndexes(m);
  const agenda = await createAgenda(conn, config);
  // Agenda emits 'error' on database trouble; an EventEmitter without a listener would crash the process.
  agenda.on('error', (error) => logger.warn({ err: error }, 'agenda error'));
  const service = new CronJobService({ conn, models: m, agenda, config, logger });
  const repair = () => reconcile(agenda, conn, m, logger);

  let working = false;
  let reconcileTimer: NodeJS.Timeout | undefined;
  // Fires in progress here, each settled by Agenda's 'complete' event: that comes after Agenda's
  // own last write (unlocking the job), which shutdown must not cut off by closing the database.
  const inflight = new Map<string, () => void>();
  agenda.on('complete', (job) => {
    const id = String(job.attrs._id);
    inflight.get(id)?.();
    inflight.delete(id);
  });

  return {
    models: m,
    agenda,
    service,
    reconcile: repair,

    /** Defines the type processors, repairs the schedules, and starts taking work. */
    async startWorker() {
      if (working) return;
      for (const type of jobTypes) {
        agenda.define<AgendaJobData>(
          type.name,
          (job) => {
            inflight.set(String(job.attrs._id), () => undefined);
            return executeFire({ conn, models: m, config, logger }, job);
          },
          {
            lockLifetime: (type as JobType).lockLifetimeMs ?? DEFAULT_LOCK_LIFETIME_MS,
            removeOnComplete: true, // one-off manual runs only; recurring jobs always have a next run
          },
        );
      }
      await repair();
      await agenda.start();
      working = true;
      if (config.RECONCILE_INTERVAL_MS > 0) {
        reconcileTimer = setInterval(() => void repair().catch((error) => logger.warn({ err: error }, 'reconcile failed')), config.RECONCILE_INTERVAL_MS);
        reconcileTimer.unref();
      }
      logger.info({ worker: config.WORKER_NAME, types: jobTypes.map((t) => t.name) }, 'worker started');
    },

    /**
     * Stops taking work (unlocking fetched jobs that had not started) and waits up to
     * `timeoutMs` for the runs in progress to finish and be unlocked.
     */
    async stop(timeoutMs: number) {
      if (!working) return;
      working = false;
      clearInterval(reconcileTimer);
      await agenda.stop(false);
      const settled = [...inflight.keys()].map((id) => new Promise<void>((ok) => inflight.set(id, ok)));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.all(settled).then(() => false),
        new Promise<boolean>((ok) => (timer = setTimeout(() => ok(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) logger.warn({ running: inflight.size }, 'shutdown timeout: runs still going are left to lock expiry');
    },
  };
}

export type Scheduler = Awaited<ReturnType<typeof openScheduler>>;
