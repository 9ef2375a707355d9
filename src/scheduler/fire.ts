import mongoose, { Types } from 'mongoose';
import { isDuplicateKey } from '../db/index.js';
import { runPolicyFor } from '../jobs/registry.js';
import { observeRun } from '../lib/metrics.js';
import type { JobDoc } from '../models/cron-job.model.js';
import type { RunDoc } from '../models/run.model.js';
import { queueRun } from './agenda.js';
import { nextFire, slotAt, slotsBetween } from './cron.js';
import type { SchedulerDeps } from './deps.js';
import { deadWorkerReason, workerIsDead } from './liveness.js';
import { interrupt } from './run-outcome.js';

/** At most this many missed slots are written one by one after a long downtime. */
export const MISSED_RECORD_LIMIT = 1000;

/** At most this many slots of one job are run late after a failover (each within the grace). */
const LATE_RUN_LIMIT = 100;

/**
 * A tick reads the clock a few ms after the second it is for; the tolerance also absorbs a
 * timer that fires a little early, so the slot it was meant for is due when it is looked at.
 */
export const EARLY_WAKE_TOLERANCE_MS = 250;

/** What a fire decided for one job's due slots, before anything is written. */
export interface SlotPlan {
  /** Slots older than the grace: recorded `missed`. */
  missed: Date[];
  /** Slots within the grace, oldest first: each gets a run (trigger `schedule`), late or on time. */
  due: Date[];
  /** The slot a `catchup` run is for (runOnce, every slot missed): the latest one. */
  catchup: Date | null;
  /** The latest slot accounted for, the job's new `lastSlotAt`; null when none came due. */
  latest: Date | null;
  nextRunAt: Date;
}

/**
 * Which slots of a job have come due since the last one accounted for, and what each becomes,
 * from the cron and timezone as they are in `job`. A slot is run when the fire looks at it within
 * `graceMs` of its time (late, if it is late), and recorded `missed` when older; under runOnce a
 * job whose every due slot was missed gets one `catchup` run for the latest.
 */
export function planSlots(job: JobDoc, now: Date, graceMs: number, toleranceMs = EARLY_WAKE_TOLERANCE_MS): SlotPlan {
  const nextRunAt = nextFire(job.cron, job.timezone, now);
  const from = new Date(Math.max(job.slotsFrom.getTime(), job.lastSlotAt?.getTime() ?? 0));
  const until = new Date(now.getTime() + toleranceMs);
  const slots = slotsBetween(job.cron, job.timezone, from, until, MISSED_RECORD_LIMIT);
  if (slots.length === 0) return { missed: [], due: [], catchup: null, latest: null, nextRunAt };
  // At the limit there may be more: the latest slot is found directly and accounted for as well.
  const last = slots[slots.length - 1]!;
  const latest = slots.length < MISSED_RECORD_LIMIT ? last : slotAt(job.cron, job.timezone, until);
  if (latest.getTime() !== last.getTime()) slots.push(latest);
  const inGrace = (slot: Date) => now.getTime() - slot.getTime() <= graceMs;
  const firstDue = slots.findIndex(inGrace);
  const missed = firstDue === -1 ? slots : slots.slice(0, firstDue);
  let due = firstDue === -1 ? [] : slots.slice(firstDue);
  if (due.length > LATE_RUN_LIMIT) {
    missed.push(...due.slice(0, due.length - LATE_RUN_LIMIT));
    due = due.slice(-LATE_RUN_LIMIT);
  }
  const catchup = due.length === 0 && job.misfirePolicy === 'runOnce' ? latest : null;
  return { missed, due, catchup, latest, nextRunAt };
}

/** Where a fire hands the runs it queued: a worker executes them itself, the API queues them in Agenda. */
export type RunSink = (runs: { run: RunDoc; job: JobDoc }[]) => Promise<void>;

export interface BatchResult {
  /** Runs queued for execution (inserted by this fire). */
  queued: number;
  missed: number;
  skipped: number;
  /** Slots another worker had accounted for already (duplicate inserts refused). */
  duplicates: number;
}

type RunFields = Pick<RunDoc, 'jobId' | 'ownerId' | 'type' | 'scheduledFor' | 'trigger' | 'status'> &
  Partial<Pick<RunDoc, 'finishedAt' | 'error' | 'worker'>> & { _id: Types.ObjectId };

/**
 * One fire of a batch of due jobs, as read by one query: every slot since each job's last one is
 * accounted for with one insert of all their records (the runs' unique (jobId, scheduledFor,
 * trigger) index makes a slot another worker recorded a refused duplicate), each job's mark is
 * moved with one bulk write, and the runs this fire inserted go to `sink`. A few commands per
 * batch rather than a dozen per run (docs/scheduling.md#work-per-run).
 */
export async function fireBatch(
  deps: SchedulerDeps,
  jobs: JobDoc[],
  now: Date,
  sink: RunSink,
  worker: string | null,
  /** Slots this far after `now` count as come (a tick's timer may wake a hair early); 0 at a change. */
  toleranceMs?: number,
): Promise<BatchResult> {
  const { models, config } = deps;
  const result: BatchResult = { queued: 0, missed: 0, skipped: 0, duplicates: 0 };
  const plans = jobs.map((job) => ({ job, plan: planSlots(job, now, config.MISFIRE_GRACE_MS, toleranceMs) }));
  const going = await runsInProgress(
    deps,
    plans.filter((p) => p.job.overlap === 'forbid' && p.plan.due.length),
  );

  const records: RunFields[] = [];
  const owners: { job: JobDoc; latestMissed: boolean }[] = [];
  for (const { job, plan } of plans) {
    const base = () => ({ ...recordBase(job), _id: new Types.ObjectId(), trigger: 'schedule' as const });
    for (const slot of plan.missed) {
      records.push({
        ...base(),
        scheduledFor: slot,
        status: 'missed',
        finishedAt: now,
        error: missedReason(slot, now),
      });
      owners.push({ job, latestMissed: slot === plan.catchup });
    }
    let previous = going.get(String(job._id));
    for (const slot of plan.due) {
      if (previous) {
        records.push({
          ...base(),
          scheduledFor: slot,
          status: 'skipped',
          finishedAt: now,
          error: overlapReason(previous),
        });
      } else {
        records.push({ ...base(), scheduledFor: slot, status: 'queued', worker });
        // Under forbid, the later slots of the same fire overlap this run.
        if (job.overlap === 'forbid') previous = records[records.length - 1]!;
      }
      owners.push({ job, latestMissed: false });
    }
  }
  const inserted = await insertRecords(deps, records);
  result.duplicates = records.length - inserted.length;

  // A catch-up only for a latest slot whose `missed` record this fire wrote: when another worker
  // recorded the slot (as run or missed) the catch-up was its to make, or was never due.
  const catchups: RunFields[] = [];
  const catchupJobs: JobDoc[] = [];
  for (const { index } of inserted) {
    const { job, latestMissed } = owners[index]!;
    if (!latestMissed) continue;
    catchups.push({
      ...recordBase(job),
      _id: new Types.ObjectId(),
      scheduledFor: records[index]!.scheduledFor,
      trigger: 'catchup',
      status: 'queued',
      worker,
    });
    catchupJobs.push(job);
  }
  const insertedCatchups = catchups.length ? await insertRecords(deps, catchups) : [];

  const queued: { run: RunDoc; job: JobDoc }[] = [];
  const lastQueued = new Map<string, Types.ObjectId>();
  const take = (run: RunDoc, job: JobDoc) => {
    if (run.status === 'queued') {
      queued.push({ run, job });
      lastQueued.set(String(job._id), run._id);
      return;
    }
    if (run.status === 'missed') result.missed++;
    else result.skipped++;
    observeRun(job.type, run.status as 'missed' | 'skipped');
  };
  for (const { index, run } of inserted) take(run, owners[index]!.job);
  for (const { index, run } of insertedCatchups) take(run, catchupJobs[index]!);
  result.queued = queued.length;
  // The runs go first: they are recorded, and a worker dying before the marks move leaves slots
  // the next fire finds recorded already (refused as duplicates), never run twice.
  if (queued.length) await sink(queued);

  // Each job's mark moves to its latest slot, compare-and-set on the mark and the edit it was read
  // with: an edit or pause meanwhile wins, and the next tick reads the job afresh. The CAS is a read
  // then a write on some servers (src/db/quirks.ts); a lost race leaves slots the next fire finds
  // recorded already.
  const marks = plans.map(({ job, plan }) => {
    const ranId = lastQueued.get(String(job._id));
    return {
      updateOne: {
        filter: { _id: job._id, enabled: true, updatedAt: job.updatedAt, lastSlotAt: job.lastSlotAt ?? null },
        update: {
          $set: {
            nextRunAt: plan.nextRunAt,
            ...(plan.latest ? { lastSlotAt: plan.latest } : {}),
            ...(ranId ? { lastScheduledRunId: ranId, status: 'running' } : {}),
          },
        },
      },
    };
  });
  if (marks.length) await models.CronJob.bulkWrite(marks, { ordered: false, timestamps: false });
  for (const { job, plan } of plans)
    if (plan.missed.length)
      deps.logger.warn(
        {
          jobId: String(job._id),
          missed: plan.missed.length,
          policy: job.misfirePolicy,
          catchup: Boolean(plan.catchup),
        },
        'slots missed',
      );
  return result;
}

const recordBase = (job: JobDoc) => ({ jobId: job._id, ownerId: job.ownerId, type: job.type });

/**
 * Inserts the records in one command; returns those inserted, with their indexes. Refused
 * duplicates are slots accounted for already; anything else is a real failure.
 */
async function insertRecords({ models }: SchedulerDeps, records: RunFields[]) {
  if (!records.length) return [];
  const now = new Date();
  const runs = records.map(
    (record): RunDoc => ({
      attempts: 0,
      startedAt: null,
      finishedAt: null,
      durationMs: null,
      error: null,
      result: null,
      worker: null,
      heartbeatAt: null,
      ...record,
      createdAt: now,
      updatedAt: now,
    }),
  );
  let refused = new Set<number>();
  try {
    await models.Run.collection.insertMany(runs, { ordered: false });
  } catch (error) {
    const writeErrors = (error as { writeErrors?: { index: number }[] }).writeErrors ?? [];
    if (!writeErrors.length || !writeErrors.every(isDuplicateKey)) throw error;
    refused = new Set(writeErrors.map((e) => e.index));
  }
  return runs.map((run, index) => ({ run, index })).filter(({ index }) => !refused.has(index));
}

/**
 * The runs still going of the jobs whose overlap is forbid, by job: each job's latest scheduled
 * and latest manual run, read by id in one query. A running run whose worker is dead is marked
 * interrupted here rather than let block the slot.
 */
async function runsInProgress(
  deps: SchedulerDeps,
  plans: { job: JobDoc }[],
): Promise<Map<string, Pick<RunDoc, '_id'>>> {
  const ids = plans.flatMap(({ job }) =>
    [job.lastScheduledRunId, job.lastManualRunId].filter((id): id is Types.ObjectId => Boolean(id)),
  );
  const going = new Map<string, Pick<RunDoc, '_id'>>();
  if (!ids.length) return going;
  const runs = await deps.models.Run.find({
    _id: mongoose.trusted({ $in: ids }),
    status: mongoose.trusted({ $in: ['queued', 'running'] }),
  }).lean<RunDoc[]>();
  for (const run of runs) {
    const { lockLifetimeMs } = runPolicyFor(run.type, deps.config);
    if (run.status === 'running' && workerIsDead(run, lockLifetimeMs)) {
      await interrupt(deps, run, deadWorkerReason(run.worker));
      continue;
    }
    going.set(String(run.jobId), run);
  }
  return going;
}

const missedReason = (slot: Date, now: Date) =>
  `no worker fired this slot in time (looked at ${Math.round((now.getTime() - slot.getTime()) / 1000)} s after it)`;

const overlapReason = (previous: Pick<RunDoc, '_id'>) =>
  `the previous run ${String(previous._id)} was still going (overlap: forbid)`;

/**
 * The slots of a job's schedule as it was (`job`, read before a pause, an edit of its schedule or
 * its deletion) that came due up to `until` (the change), recorded by the same rules as a tick:
 * run, late or missed. A worker may not have fired them yet (a failover under way, workers down,
 * or simply the last second), and after the change none will; those a worker did record are
 * refused as duplicates. Runs go through Agenda, for whichever worker takes them first, unless
 * `sink` says otherwise.
 */
export async function accountDueSlots(
  deps: SchedulerDeps,
  job: JobDoc,
  until: Date,
  sink: RunSink = viaAgenda(deps),
): Promise<void> {
  if (!job.enabled || !job.nextRunAt || job.nextRunAt.getTime() > until.getTime()) return;
  await fireBatch(deps, [job], until, sink, null, 0);
}

/** Queues runs in Agenda, for whichever worker takes them first. */
const viaAgenda =
  (deps: SchedulerDeps): RunSink =>
  async (runs) => {
    for (const { run } of runs) await queueRun(deps.agenda, { id: String(run.jobId), type: run.type }, String(run._id));
  };
