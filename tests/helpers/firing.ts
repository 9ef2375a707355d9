import type { JobDoc } from '../../src/models/cron-job.model.js';
import type { RunDoc } from '../../src/models/run.model.js';
import { queueRun } from '../../src/scheduler/agenda.js';
import type { SchedulerDeps } from '../../src/scheduler/deps.js';
import { fireBatch, type RunSink } from '../../src/scheduler/fire.js';
import type { Harness } from './harness.js';

/** The scheduler's parts as a worker named `worker` has them, on the harness's connection. */
export const depsOf = (h: Harness, worker: string): SchedulerDeps => ({
  agenda: h.scheduler.agenda,
  conn: h.conn,
  models: h.scheduler.models,
  config: { ...h.config, WORKER_NAME: worker },
  logger: h.logger,
});

/** Runs a fire queues go to Agenda, for whichever worker takes them (as the API's fires do). */
export const viaAgenda =
  (deps: SchedulerDeps, seen: RunDoc[] = []): RunSink =>
  async (runs) => {
    for (const { run } of runs) {
      seen.push(run);
      await queueRun(deps.agenda, { id: String(run.jobId), type: run.type }, String(run._id));
    }
  };

/** One fire of one job at `now`, as a tick would make it; returns what it queued too. */
export async function fireJob(deps: SchedulerDeps, jobId: string, now = new Date()) {
  const job = await deps.models.CronJob.findById(jobId).lean<JobDoc>();
  const queued: RunDoc[] = [];
  const result = await fireBatch(deps, [job!], now, viaAgenda(deps, queued), null);
  return { ...result, runs: queued };
}
