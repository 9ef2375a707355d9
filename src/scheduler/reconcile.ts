import mongoose from 'mongoose';
import { eachLimit } from '../lib/async.js';
import { nextFire } from './cron.js';
import { NOT_AN_EDIT, type SchedulerDeps } from './deps.js';
import { ensureDispatcher } from './dispatch.js';

export interface ReconcileResult {
  /** Enabled jobs given the next fire they lacked (jobs imported straight into the collection). */
  scheduled: number;
  /** Paused jobs that still had a next fire. */
  cleared: number;
}

/**
 * Makes the database ready for the dispatcher, on worker start and periodically: its Agenda job
 * exists, every enabled job has a next fire (the dispatcher fires what is due by it) and paused
 * ones have none. Each correction is conditional on the field still being what was read, so an
 * edit made meanwhile is not undone. Two queries when everything is in order.
 */
export async function reconcile({ agenda, conn, models, logger }: SchedulerDeps): Promise<ReconcileResult> {
  await ensureDispatcher(agenda, conn);
  const unscheduled = await models.CronJob.find({ enabled: true, nextRunAt: null }, { cron: 1, timezone: 1 }).lean();
  let scheduled = 0;
  // Eight updates in flight rather than one: round trips overlap (no bulk conditional updates on
  // every server: src/db/quirks.ts).
  await eachLimit(unscheduled, 8, async (job) => {
    const { modifiedCount } = await models.CronJob.updateOne(
      { _id: job._id, enabled: true, nextRunAt: null, cron: job.cron, timezone: job.timezone },
      { $set: { nextRunAt: nextFire(job.cron, job.timezone) } },
      NOT_AN_EDIT,
    );
    scheduled += modifiedCount;
  });
  const { modifiedCount: cleared } = await models.CronJob.updateMany(
    { enabled: false, nextRunAt: mongoose.trusted({ $ne: null }) },
    { $set: { nextRunAt: null } },
    NOT_AN_EDIT,
  );
  const result = { scheduled, cleared };
  if (scheduled || cleared) logger.info(result, 'schedules reconciled');
  return result;
}
