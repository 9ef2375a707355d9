import mongoose from 'mongoose';
import { eachLimit } from '../lib/async.js';
import { agendaJobs } from './agenda.js';
import { bucketOf } from './buckets.js';
import { nextFire } from './cron.js';
import { NOT_AN_EDIT, type SchedulerDeps } from './deps.js';

/** The Agenda job that fired every schedule before partitions (up to API 4.0.0): removed where left. */
const OLD_DISPATCH_JOB = 'cron-dispatch';

export interface ReconcileResult {
  /** Enabled jobs given the next fire they lacked (jobs imported straight into the collection). */
  scheduled: number;
  /** Paused jobs that still had a next fire. */
  cleared: number;
  /** Jobs given the bucket they lacked (imported, or stored before partitions). */
  bucketed: number;
}

/**
 * Makes the database ready for firing, on worker start and periodically: every job has a bucket
 * (its partition), every enabled job has a next fire (ticks fire what is due by it) and paused
 * ones have none. Each correction is conditional on the field still being what was read, so an
 * edit made meanwhile is not undone. Three queries when everything is in order.
 */
export async function reconcile({ conn, models, logger }: SchedulerDeps): Promise<ReconcileResult> {
  await agendaJobs(conn).deleteMany({ name: OLD_DISPATCH_JOB });
  const unbucketed = await models.CronJob.find({ bucket: null }, { _id: 1 }).lean();
  let bucketed = 0;
  for (let i = 0; i < unbucketed.length; i += 500) {
    const ops = unbucketed.slice(i, i + 500).map((job) => ({
      updateOne: { filter: { _id: job._id, bucket: null }, update: { $set: { bucket: bucketOf(job._id) } } },
    }));
    bucketed += (await models.CronJob.bulkWrite(ops, { ordered: false, timestamps: false })).modifiedCount;
  }
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
  const result = { scheduled, cleared, bucketed };
  if (scheduled || cleared || bucketed) logger.info(result, 'schedules reconciled');
  return result;
}
