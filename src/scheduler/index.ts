import type { Connection } from 'mongoose';
import type { Env } from '../env.js';
import { runPolicyOf, type JobType } from '../jobs/job-type.js';
import { jobTypes } from '../jobs/registry.js';
import type { Logger } from '../lib/logger.js';
import { ensureIndexes, models } from '../models/index.js';
import { createAgenda } from './agenda.js';
import { reconcile } from './agenda-jobs.js';
import { executeFire, type AgendaJobData } from './runner.js';
import { CronJobService } from './service.js';

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
  let reconciling: Promise<unknown> | undefined;
  const runnerDeps = { agenda, conn, models: m, config, logger };

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
          (job) => executeFire(runnerDeps, job),
          {
            lockLifetime: runPolicyOf(type as JobType, config).lockLifetimeMs,
            removeOnComplete: true, // one-off manual runs only; recurring jobs always have a next run
          },
        );
      }
      await repair();
      await agenda.start();
      working = true;
      if (config.RECONCILE_INTERVAL_MS > 0) {
        reconcileTimer = setInterval(() => {
          // A pass still going (many jobs, a slow database) is not doubled.
          reconciling ??= repair()
            .catch((error) => logger.warn({ err: error }, 'reconcile failed'))
            .finally(() => (reconciling = undefined));
        }, config.RECONCILE_INTERVAL_MS);
        reconcileTimer.unref();
      }
      logger.info({ worker: config.WORKER_NAME, types: jobTypes.map((t) => t.name) }, 'worker started');
    },

    /**
     * Stops taking work (unlocking fetched jobs that had not started) and waits up to
     * `timeoutMs` for the fires in progress to finish, Agenda's own last writes included (the
     * unlock, the removal of a finished one-off job), before the caller closes the database.
     */
    async stop(timeoutMs: number) {
      if (!working) return;
      working = false;
      clearInterval(reconcileTimer);
      // Agenda's list of fires in progress is the only one that also holds a fire still saving
      // its start, before our processor is called; Agenda keeps it private and drops its
      // processor on stop(), so the reference is taken first (agenda is pinned at 6.2.6).
      const processor = (agenda as unknown as { jobProcessor?: { runningJobs: unknown[] } }).jobProcessor;
      await agenda.stop(false);
      const deadline = Date.now() + timeoutMs;
      while ((processor?.runningJobs.length ?? 0) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await reconciling;
      const left = processor?.runningJobs.length ?? 0;
      if (left) logger.warn({ running: left }, 'shutdown timeout: runs still going are left to lock expiry');
    },
  };
}

export type Scheduler = Awaited<ReturnType<typeof openScheduler>>;
