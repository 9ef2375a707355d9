import type { Connection } from 'mongoose';
import type { Env } from '../env.js';
import { jobTypes } from '../jobs/registry.js';
import type { JobType } from '../jobs/job-type.js';
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
  const agenda = createAgenda(conn, config);
  // Agenda emits 'error' on database trouble; an EventEmitter without a listener would crash the process.
  agenda.on('error', (error) => logger.warn({ err: error }, 'agenda error'));
  const service = new CronJobService({ conn, models: m, agenda, config, logger });
  let working = false;
  // Runs in progress in this process, so stop() can wait for them after Agenda stops fetching.
  const inflight = new Set<Promise<void>>();

  return {
    models: m,
    agenda,
    service,

    /** Defines the type processors, repairs the schedules, and starts taking work. */
    async startWorker() {
      for (const type of jobTypes as readonly JobType[]) {
        agenda.define<AgendaJobData>(type.name, (job) => {
          const run = executeFire({ conn, models: m, config, logger }, type, job);
          inflight.add(run);
          return run.finally(() => inflight.delete(run));
        }, {
          lockLifetime: type.lockLifetimeMs ?? DEFAULT_LOCK_LIFETIME_MS,
          removeOnComplete: true, // one-off manual runs only; recurring jobs always have a next run
        });
      }
      await reconcile(agenda, conn, m, logger);
      await agenda.start();
      working = true;
      logger.info({ worker: config.WORKER_NAME, types: jobTypes.map((t) => t.name) }, 'worker started');
    },

    /** Stops taking work and lets running handlers finish within the timeout. */
    async stop(timeoutMs: number) {
      if (!working) return;
      working = false;
      // stop() ends fetching and unlocks fetched-but-unstarted jobs (drain() would leave those
      // locked until their lock expires); the runs already going are waited for here.
      await agenda.stop(false);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.allSettled(inflight).then(() => false),
        new Promise<boolean>((ok) => (timer = setTimeout(() => ok(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) logger.warn({ running: inflight.size }, 'shutdown timeout: runs still going are left to lock expiry');
    },

    reconcile: () => reconcile(agenda, conn, m, logger),
  };
}

export type Scheduler = Awaited<ReturnType<typeof openScheduler>>;
