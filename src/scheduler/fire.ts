import type { Types } from 'mongoose';
import { isDuplicateKey } from '../db/index.js';
import { runPolicyFor } from '../jobs/registry.js';
import { observeRun } from '../lib/metrics.js';
import type { JobDoc } from '../models/cron-job.model.js';
import type { Models } from '../models/index.js';
import { queueRun } from './agenda.js';
import { nextFire, slotAt, slotsBetween } from './cron.js';
import { NOT_AN_EDIT, type SchedulerDeps } from './deps.js';
import { deadWorkerReason, workerIsDead } from './liveness.js';
import { interrupt } from './run-outcome.js';

/** At most this many missed slots are written one by one after a long downtime. */
export const MISSED_RECORD_LIMIT = 1000;

/**
 * A tick reads the clock a few ms after the second it is for; the tolerance also absorbs a
 * timer that fires a little early, so the slot it was meant for is due when it is looked at.
 */
const EARLY_WAKE_TOLERANCE_MS = 250;

export type FireOutcome =
  | { kind: 'refused'; reason: 'deleted' | 'paused' }
  | { kind: 'early' }
  | { kind: 'accounted'; slot: Date; missed: number; queued: string | null; skipped: boolean };

/**
 * One fire of a cron job (the dispatcher found it due): accounts for every slot since the last one accounted
 * for, from the cron and timezone as they are now (the job is read afresh). The latest slot is
 * queued as a run when it is on time (trigger `schedule`) or, after a misfire, when the policy is
 * runOnce (trigger `catchup`); every slot before it, and a late latest one, is recorded as
 * `missed`; a slot that would overlap a run still going under `overlap: forbid` is recorded as
 * `skipped`. Each record is an insert under the runs' unique (jobId, scheduledFor, trigger)
 * index, so two workers waking for the same slot account for it once.
 */
export async function fireSlots(deps: SchedulerDeps, jobId: string, now = new Date()): Promise<FireOutcome> {
  const { models, config } = deps;
  const log = deps.logger.child({ jobId });
  // Read afresh by id (the tick's list may be a moment old): a job paused, deleted or given a
  // new cron meanwhile is fired as it is now.
  const job = await models.CronJob.findById(jobId).lean<JobDoc>();
  if (!job?.enabled) {
    log.info({ reason: job ? 'paused' : 'deleted' }, 'fire skipped');
    return { kind: 'refused', reason: job ? 'paused' : 'deleted' };
  }
  const nextRunAt = nextFire(job.cron, job.timezone, now);

  const from = new Date(Math.max(job.slotsFrom.getTime(), job.lastSlotAt?.getTime() ?? 0));
  const until = new Date(now.getTime() + EARLY_WAKE_TOLERANCE_MS);
  const slots = slotsBetween(job.cron, job.timezone, from, until, MISSED_RECORD_LIMIT);
  if (slots.length === 0) {
    // Woken before the slot (a clock that drifted): only the next fire needs setting.
    await models.CronJob.updateOne({ _id: job._id, enabled: true }, { $set: { nextRunAt } }, NOT_AN_EDIT);
    return { kind: 'early' };
  }
  // At the limit there may be more: the latest slot is found directly and recorded as well.
  const last = slots[slots.length - 1]!;
  const latest = slots.length < MISSED_RECORD_LIMIT ? last : slotAt(job.cron, job.timezone, until);
  if (latest.getTime() !== last.getTime()) {
    log.warn({ recorded: MISSED_RECORD_LIMIT, from, latest }, 'more slots missed than are recorded one by one');
    slots.push(latest);
  }
  const lateMs = Math.max(0, now.getTime() - latest.getTime());
  const onTime = lateMs <= config.MISFIRE_GRACE_MS;
  const missed = onTime ? slots.slice(0, -1) : slots;
  await recordMissed(models, job, missed, now);
  for (let i = 0; i < missed.length; i++) observeRun(job.type, 'missed');

  let queued: string | null = null;
  let skipped = false;
  const trigger = onTime ? ('schedule' as const) : job.misfirePolicy === 'runOnce' ? ('catchup' as const) : undefined;
  if (trigger === 'catchup' && (await slotRecorded(models, job, latest))) {
    log.info({ slot: latest }, 'late slot already recorded before the last worker stopped: no catch-up run');
  } else if (trigger) {
    const base = { jobId: job._id, ownerId: job.ownerId, type: job.type, scheduledFor: latest, trigger };
    const previous = job.overlap === 'forbid' ? await runInProgress(deps, job) : null;
    try {
      if (previous) {
        await models.Run.create({
          ...base,
          status: 'skipped',
          finishedAt: now,
          error: `the previous run ${String(previous._id)} was still going (overlap: forbid)`,
        });
        skipped = true;
        observeRun(job.type, 'skipped');
      } else {
        const run = await models.Run.create({ ...base, status: 'queued' });
        queued = String(run._id);
        await queueRun(deps.agenda, { id: jobId, type: job.type }, queued);
      }
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      log.info({ slot: latest }, 'slot already accounted for by another worker');
    }
  }
  // Conditional rather than $max, a compare-and-set whose lost race is harmless (atomicConditionalUpdate
  // in src/db/quirks.ts): the next fire looks at slots already recorded, refused as duplicates.
  // Compare-and-set on the value last read (by _id, so one document is read), read again
  // when another worker moved it meanwhile, so the mark only ever goes forward.
  for (let seen = job.lastSlotAt ?? null; !seen || seen < latest; ) {
    const { modifiedCount } = await models.CronJob.updateOne(
      { _id: job._id, lastSlotAt: seen },
      { $set: { lastSlotAt: latest, nextRunAt, ...(queued ? { lastScheduledRunId: queued } : {}) } },
      NOT_AN_EDIT,
    );
    if (modifiedCount) break;
    const fresh = await models.CronJob.findById(job._id, { lastSlotAt: 1 }).lean<{ lastSlotAt: Date | null }>();
    if (!fresh) break;
    seen = fresh.lastSlotAt ?? null;
  }
  if (missed.length)
    log.warn(
      { missed: missed.length, lateMs, policy: job.misfirePolicy, catchup: trigger === 'catchup' },
      'slots missed',
    );
  return { kind: 'accounted', slot: latest, missed: missed.length, queued, skipped };
}

/**
 * The job's run still going, if any: its latest scheduled and latest manual run, read by id. A
 * fire under `overlap: forbid` queues a run only when the one before has ended, so no older
 * scheduled run can still be going. A running run whose heartbeat is older than its type's
 * lock lifetime lost its worker: it is marked interrupted here rather than let block the slot.
 */
async function runInProgress(deps: SchedulerDeps, job: JobDoc) {
  const ids = [job.lastScheduledRunId, job.lastManualRunId].filter((id): id is Types.ObjectId => Boolean(id));
  const runs = (await Promise.all(ids.map((id) => deps.models.Run.findById(id).lean()))).filter(
    (run) => run && (run.status === 'running' || run.status === 'queued'),
  );
  const { lockLifetimeMs } = runPolicyFor(job.type, deps.config);
  for (const run of runs) {
    if (run!.status === 'running' && workerIsDead(run!, lockLifetimeMs)) {
      await interrupt(deps, run!, deadWorkerReason(run!.worker));
      continue;
    }
    return run;
  }
  return null;
}

/**
 * Whether a slot already has a run under trigger `schedule` (its `missed` record, written just
 * before a catch-up, does not count). A worker killed
 * after recording its on-time run but before moving `lastSlotAt` leaves that slot to the next
 * fire, which finds it late; a `catchup` run for it would slip past the unique index (which
 * includes the trigger) and run the slot twice. An on-time insert happens within the grace and a
 * catch-up only after it, so reading first leaves no practical race.
 */
async function slotRecorded(models: Models, job: JobDoc, slot: Date): Promise<boolean> {
  const records = await models.Run.find(
    { jobId: job._id, scheduledFor: slot, trigger: 'schedule' },
    { status: 1 },
  ).lean();
  return records.some((record) => record.status !== 'missed');
}

/** Writes one `missed` run per slot; slots another worker already recorded are left alone. */
async function recordMissed(models: Models, job: JobDoc, slots: Date[], now: Date) {
  if (!slots.length) return;
  const docs = slots.map((scheduledFor) => ({
    jobId: job._id,
    ownerId: job.ownerId,
    type: job.type,
    scheduledFor,
    trigger: 'schedule' as const,
    status: 'missed' as const,
    finishedAt: now,
    error: `no worker fired this slot in time (looked at ${secondsAfter(scheduledFor, now)} s after it)`,
  }));
  try {
    await models.Run.insertMany(docs, { ordered: false });
  } catch (error) {
    // Duplicates are slots accounted for already; anything else is a real failure.
    const writeErrors = (error as { writeErrors?: unknown[] }).writeErrors;
    if (!isDuplicateKey(error) && !(writeErrors?.length && writeErrors.every(isDuplicateKey))) throw error;
  }
}

const secondsAfter = (slot: Date, now: Date) => Math.round((now.getTime() - slot.getTime()) / 1000);
