import { Types } from 'mongoose';
import { capabilitiesOf, isDuplicateKey } from '../db/index.js';
import { sleep } from '../lib/async.js';
import { DELETED_JOBS_COLLECTION } from '../models/index.js';
import { RUN_STATUSES } from '../models/run.model.js';
import type { SchedulerDeps } from './deps.js';

/**
 * Bounded history (docs/scheduling.md#history-and-retention): finished runs are kept per job up
 * to a count (succeeded and not-succeeded apart) and an age, audit entries and reports up to an
 * age, and the claims of manual runs only while their run is queued or running.
 *
 * Runs are only ever read by one job's `jobId` (an equality, which FerretDB answers in SQL from
 * the index `{jobId: 1, _id: -1}`; a range on `_id` it answers by reading the whole collection,
 * src/db/quirks.ts), so a pass costs the runs of the jobs it visits, not the size of the history.
 * The jobs visited: those whose `lastRunAt` is past the mark of the last complete round (read
 * from `cron_jobs`, a scan of jobs and not of runs), a slice of the others in turn by `_id` (so
 * a quiet job ages out too), and deleted jobs, which `CronJobService.remove` writes down in
 * DELETED_JOBS_COLLECTION. For each, one read of its runs decides what goes, and at most two
 * deletes (past the age, past the counts) remove it: `{jobId, _id: {$in: [...]}, status: finished}`.
 * A pass stops at caps on jobs, deleted documents and time, and the next goes on where it
 * stopped. Two workers sweeping at once delete the same runs: a delete of what is already gone
 * deletes nothing, so that is harmless.
 */

/** Where the marks of the rounds over jobs are kept (one document)... */
export const RETENTION_COLLECTION = 'history_retention';
const RUNS_MARK_ID = 'runs';
/** Workers' clocks may differ this much: a job that ran this long before the mark is visited again. */
const CLOCK_SKEW_MS = 60_000;
/** Jobs are trimmed back to back for this long at most, then the pass pauses (pauseMs). */
const PAUSE_EVERY_MS = 100;

/** A run in one of these is never deleted. */
const UNFINISHED = ['queued', 'running'] as const;
/** Every finished status other than succeeded: one limit for all of them. */
export const NOT_SUCCEEDED = RUN_STATUSES.filter((s) => s !== 'succeeded' && !UNFINISHED.includes(s as never));
const FINISHED = ['succeeded', ...NOT_SUCCEEDED];

const DAY_MS = 86_400_000;

/** How much one pass may do; the defaults suit a sweep every few minutes beside firing. */
export interface RetentionLimits {
  /**
   * Audit entries and reports one delete may remove (and one read may return). Where ranges are
   * not read from an index (FerretDB, src/db/quirks.ts) every read costs the whole selection, so
   * there a batch defaults to the pass's cap.
   */
  batchSize: number;
  /** A pass stops once it has deleted this many documents (one delete removes at most what is left)... */
  maxDeletesPerPass: number;
  /** ...or has visited this many jobs... */
  maxJobsPerPass: number;
  /** ...or after this long; the next pass goes on. */
  maxPassMs: number;
  /** Jobs that did not run since the last round, visited per pass in turn (for the age limit). */
  quietJobsPerPass: number;
  /** Between two batches, and after 100 ms of jobs trimmed back to back, so firing and the API get the database. */
  pauseMs: number;
  /** Stops the pass between two batches. */
  signal?: AbortSignal;
}

export const DEFAULT_RETENTION_LIMITS: RetentionLimits = {
  batchSize: 500,
  maxDeletesPerPass: 20_000,
  maxJobsPerPass: 2000,
  maxPassMs: 10_000,
  quietJobsPerPass: 100,
  pauseMs: 20,
};

/** What one pass deleted, and whether it stopped at a cap with work left. */
export interface RetentionResult {
  runsOverLimit: number;
  runsTooOld: number;
  claims: number;
  auditEntries: number;
  reports: number;
  /** Jobs (deleted ones included) whose runs were read and brought within the limits. */
  jobsTrimmed: number;
  /** True when the pass stopped at a cap (or was stopped); the next one goes on. */
  cutShort: boolean;
  ms: number;
}

/** An ObjectId no newer than `at`: every id created before `at`'s second is below it. */
const idAt = (at: Date) => Types.ObjectId.createFromTime(Math.floor(at.getTime() / 1000));
const daysBefore = (now: Date, days: number) => new Date(now.getTime() - days * DAY_MS);

type IdDoc = { _id: Types.ObjectId };
/** The rounds over jobs: the one under way visits the jobs that ran since `since` (all of them without). */
interface RoundMarks {
  _id: string;
  since?: Date | null;
  /** When the round under way began: the next round's `since`. */
  roundStart?: Date | null;
  /** The last job the round under way is done with. */
  afterJob?: Types.ObjectId | null;
  /** The last quiet job visited. */
  quietAfter?: Types.ObjectId | null;
}
interface DeletedJob {
  _id: Types.ObjectId;
  deletedAt: Date;
  /** Set once its runs were cut to the count limits; they then stay until RUNS_KEPT_DAYS past the delete. */
  trimmed?: boolean;
}

/**
 * Writes a deleted job down (CronJobService.remove), so its runs are trimmed and, RUNS_KEPT_DAYS
 * after the delete, deleted.
 */
export async function recordDeletedJob(deps: Pick<SchedulerDeps, 'conn'>, jobId: Types.ObjectId, deletedAt: Date) {
  await deps.conn
    .collection<DeletedJob>(DELETED_JOBS_COLLECTION)
    .insertOne({ _id: jobId, deletedAt })
    .catch((error) => {
      // Two deletes of one job raced: it is written down either way.
      if (!isDuplicateKey(error)) throw error;
    });
}

/** One pass: deletes what is past its limit, up to the pass's caps. */
export async function sweepHistory(
  deps: SchedulerDeps,
  now = new Date(),
  limits: Partial<RetentionLimits> = {},
): Promise<RetentionResult> {
  const { models, config, conn } = deps;
  const whole = capabilitiesOf(conn).indexedRanges
    ? {}
    : { batchSize: limits.maxDeletesPerPass ?? DEFAULT_RETENTION_LIMITS.maxDeletesPerPass };
  const lim = { ...DEFAULT_RETENTION_LIMITS, ...whole, ...limits };
  const started = Date.now();
  const result: RetentionResult = {
    runsOverLimit: 0,
    runsTooOld: 0,
    claims: 0,
    auditEntries: 0,
    reports: 0,
    jobsTrimmed: 0,
    cutShort: false,
    ms: 0,
  };
  let deleted = 0;
  let visited = 0;
  /**
   * False once a cap is reached: no further batch or job starts. The time cap spares a step's
   * first batch, so every step makes progress in every pass, even where one read outlasts the cap.
   */
  const mayGoOn = (firstOfStep = false) => {
    const over =
      lim.signal?.aborted ||
      deleted >= lim.maxDeletesPerPass ||
      (!firstOfStep && Date.now() - started >= lim.maxPassMs);
    if (over) result.cutShort = true;
    return !over;
  };
  /** The same before a job is visited, which the cap on jobs stops too. */
  const mayVisit = (firstOfStep = false) => {
    if (visited < lim.maxJobsPerPass) return mayGoOn(firstOfStep);
    result.cutShort = true;
    return false;
  };
  /** How many documents the next delete may remove. */
  const room = () => Math.max(0, lim.maxDeletesPerPass - deleted);
  const pause = () => sleep(lim.pauseMs, lim.signal);
  const cut = config.RUNS_KEPT_DAYS > 0 ? idAt(daysBefore(now, config.RUNS_KEPT_DAYS)) : undefined;
  const kinds = [
    { of: ['succeeded'], keep: config.RUNS_KEPT_SUCCEEDED_PER_JOB },
    { of: NOT_SUCCEEDED as string[], keep: config.RUNS_KEPT_FAILED_PER_JOB },
  ];

  /** When the pass last paused: it pauses after a job once this is PAUSE_EVERY_MS old. */
  let pausedAt = Date.now();

  /**
   * Brings one job's finished runs within the limits (all of them go with `everything`): one read
   * of its runs, then one delete of those past the age limit and one of those past the counts,
   * each of their ids within the job. Returns false when the pass's delete cap left some for the
   * next pass.
   */
  const trimJob = async (jobId: Types.ObjectId, everything = false): Promise<boolean> => {
    visited++;
    const runs = await models.Run.collection
      .find<{ _id: Types.ObjectId; status: string }>({ jobId }, { projection: { status: 1 }, sort: { _id: -1 } })
      .toArray();
    /** Deletes `going` up to the room left; the status filter spares a run not finished, whatever was read. */
    const deleteIds = async (going: Types.ObjectId[]) => {
      const n = Math.min(room(), going.length);
      if (n === 0) return { count: 0, done: going.length === 0 };
      const filter = { jobId, _id: { $in: going.slice(0, n) }, status: { $in: FINISHED } };
      const { deletedCount } = await models.Run.collection.deleteMany(filter);
      deleted += deletedCount;
      return { count: deletedCount, done: n === going.length };
    };
    const tooOld = (id: Types.ObjectId) => everything || (cut !== undefined && id < cut);
    const finished = runs.filter((r) => FINISHED.includes(r.status));
    const age = await deleteIds(finished.filter((r) => tooOld(r._id)).map((r) => r._id));
    result.runsTooOld += age.count;
    // Per kind, those past its newest N (newest first) that the age did not take.
    const over = kinds.flatMap(({ of, keep }) =>
      finished
        .filter((r) => of.includes(r.status))
        .slice(keep)
        .map((r) => r._id)
        .filter((id) => !tooOld(id)),
    );
    const trim = age.done ? await deleteIds(over) : { count: 0, done: over.length === 0 };
    result.runsOverLimit += trim.count;
    if (age.count + trim.count > 0 && Date.now() - pausedAt >= PAUSE_EVERY_MS) {
      await pause();
      pausedAt = Date.now();
    }
    if (age.done && trim.done) result.jobsTrimmed++;
    return age.done && trim.done;
  };

  // Jobs that ran since the round began (each once per round, in `_id` order), then a slice of
  // the others in turn. A round cut short by the caps goes on from its last job at the next pass.
  const marksCollection = conn.collection<RoundMarks>(RETENTION_COLLECTION);
  const marks = (await marksCollection.findOne({ _id: RUNS_MARK_ID })) ?? { _id: RUNS_MARK_ID };
  const jobs = await models.CronJob.collection
    .find<{ _id: Types.ObjectId; lastRunAt?: Date | null }>({}, { projection: { lastRunAt: 1 }, sort: { _id: 1 } })
    .toArray();
  const since = marks.since?.getTime() ?? Number.NEGATIVE_INFINITY;
  const ran = jobs.filter(
    (j) => (!marks.afterJob || j._id > marks.afterJob) && (j.lastRunAt?.getTime() ?? Number.NEGATIVE_INFINITY) >= since,
  );
  const next: RoundMarks = { ...marks, roundStart: marks.roundStart ?? now };
  let roundDone = true;
  for (const [i, { _id }] of ran.entries()) {
    if (!mayVisit(i === 0)) {
      roundDone = false;
      break;
    }
    if (!(await trimJob(_id))) {
      roundDone = false;
      break;
    }
    next.afterJob = _id;
  }
  if (roundDone)
    Object.assign(next, {
      since: new Date(next.roundStart!.getTime() - CLOCK_SKEW_MS),
      roundStart: null,
      afterJob: null,
    });
  const quiet = new Set(ran.map((j) => String(j._id)));
  const others = jobs.filter((j) => !quiet.has(String(j._id)));
  const from = others.findIndex((j) => !marks.quietAfter || j._id > marks.quietAfter);
  const slice = [...others.slice(Math.max(0, from)), ...others.slice(0, Math.max(0, from))].slice(
    0,
    lim.quietJobsPerPass,
  );
  for (const { _id } of slice) {
    if (!mayVisit() || !(await trimJob(_id))) break;
    next.quietAfter = _id;
  }
  await marksCollection.replaceOne({ _id: RUNS_MARK_ID }, next, { upsert: true }).catch((error) => {
    // Two first upserts raced (an upsert is a read then an insert on FerretDB): the other one wrote it.
    if (!isDuplicateKey(error)) throw error;
  });

  // Deleted jobs: their runs are cut to the counts once, then all go RUNS_KEPT_DAYS after the delete.
  const deletedJobs = conn.collection<DeletedJob>(DELETED_JOBS_COLLECTION);
  let firstDeleted = true;
  for (const job of await deletedJobs.find({}, { sort: { _id: 1 } }).toArray()) {
    const expired = config.RUNS_KEPT_DAYS > 0 && job.deletedAt < daysBefore(now, config.RUNS_KEPT_DAYS);
    if (job.trimmed && !expired) continue;
    if (!mayVisit(firstDeleted) || !(await trimJob(job._id, expired))) break;
    firstDeleted = false;
    if (expired || config.RUNS_KEPT_DAYS === 0) await deletedJobs.deleteOne({ _id: job._id });
    else await deletedJobs.updateOne({ _id: job._id }, { $set: { trimmed: true } });
  }

  /**
   * Deletes the documents `read` finds (a limited read in the order of `key`, oldest or newest
   * first), each batch as one range of `key` within `filter`; returns how many went and whether
   * it got to the end.
   */
  const deleteInBatches = async (
    collection: { deleteMany(filter: object): Promise<{ deletedCount: number }> },
    filter: Record<string, unknown>,
    key: '_id' | 'at',
    newestFirst: boolean,
    read: (limit: number) => Promise<Record<string, unknown>[]>,
  ): Promise<{ count: number; done: boolean }> => {
    let count = 0;
    for (let first = true; mayGoOn(first); first = false) {
      const size = Math.max(1, Math.min(lim.batchSize, room()));
      const batch = await read(size);
      if (batch.length === 0) return { count, done: true };
      const [low, high] = [batch[0]![key], batch.at(-1)![key]];
      const range = newestFirst ? { $gte: high, $lte: low } : { $gte: low, $lte: high };
      const { deletedCount } = await collection.deleteMany({ ...filter, [key]: range });
      count += deletedCount;
      deleted += deletedCount;
      if (batch.length < size) return { count, done: true };
      await pause();
    }
    return { count, done: false };
  };

  // Claims of manual runs that are finished or gone: oldest first (a claim's _id is its run's).
  // Claims are read before the runs in progress, so a claim read is of a run already in that list.
  let claimsAfter: Types.ObjectId | undefined;
  let inProgress: Set<string> | undefined;
  for (let first = true; mayGoOn(first); first = false) {
    const claims = await models.RunClaim.collection
      .find<IdDoc>(claimsAfter ? { _id: { $gt: claimsAfter } } : {}, {
        projection: { _id: 1 },
        sort: { _id: 1 },
        limit: lim.batchSize,
      })
      .toArray();
    if (claims.length === 0) break;
    // One equality per status: selective in SQL on FerretDB too (a status $in is not).
    inProgress ??= new Set(
      (
        await Promise.all(
          UNFINISHED.map((status) =>
            models.Run.collection.find<IdDoc>({ status }, { projection: { _id: 1 } }).toArray(),
          ),
        )
      ).flatMap((runs) => runs.map((r) => String(r._id))),
    );
    const done = claims.map((c) => c._id).filter((id) => !inProgress!.has(String(id)));
    if (done.length) {
      const { deletedCount } = await models.RunClaim.collection.deleteMany({ _id: { $in: done } });
      result.claims += deletedCount;
      deleted += deletedCount;
    }
    claimsAfter = claims.at(-1)!._id;
    if (claims.length < lim.batchSize) break;
    await pause();
  }

  if (config.AUDIT_KEPT_DAYS > 0) {
    const old = { at: { $lt: daysBefore(now, config.AUDIT_KEPT_DAYS) } };
    const audit = await deleteInBatches(models.AuditLog.collection, {}, 'at', false, (limit) =>
      models.AuditLog.collection
        .find<{ at: Date }>(old, { projection: { _id: 0, at: 1 }, sort: { at: 1 }, limit })
        .toArray(),
    );
    result.auditEntries = audit.count;
  }

  if (config.REPORTS_KEPT_DAYS > 0) {
    const old = { _id: { $lt: idAt(daysBefore(now, config.REPORTS_KEPT_DAYS)) } };
    const reports = await deleteInBatches(models.Report.collection, {}, '_id', false, (limit) =>
      models.Report.collection.find<IdDoc>(old, { projection: { _id: 1 }, sort: { _id: 1 }, limit }).toArray(),
    );
    result.reports = reports.count;
  }

  result.ms = Date.now() - started;
  return result;
}

/**
 * Sweeps every HISTORY_SWEEP_INTERVAL_MS (unref'd: it never keeps the process alive), one pass at a
 * time; a failed pass is logged and the next one tries again. Returns a stop function, which also
 * ends a pass in progress at its next batch and resolves once it has.
 */
export function startRetention(deps: SchedulerDeps, limits: Partial<RetentionLimits> = {}): () => Promise<void> {
  const { config, logger } = deps;
  const stopping = new AbortController();
  let sweeping: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = sweepHistory(deps, new Date(), { ...limits, signal: stopping.signal })
      .then((result) => logger.debug({ ...result }, 'history swept'))
      .catch((error) => logger.warn({ err: error }, 'history sweep failed'))
      .finally(() => (sweeping = undefined));
  }, config.HISTORY_SWEEP_INTERVAL_MS);
  timer.unref();
  // Resolves once a pass in progress has stopped (at its next batch), before the connection closes.
  return async () => {
    clearInterval(timer);
    stopping.abort();
    await sweeping;
  };
}
