import { Types } from 'mongoose';
import { capabilitiesOf, isDuplicateKey } from '../db/index.js';
import { sleep } from '../lib/async.js';
import { RUN_STATUSES } from '../models/run.model.js';
import type { SchedulerDeps } from './deps.js';

/**
 * Bounded history (docs/scheduling.md#history-and-retention): finished runs are kept per job up
 * to a count (succeeded and not-succeeded apart) and an age, audit entries and reports up to an
 * age, and the claims of manual runs only while their run is queued or running.
 *
 * Every query is served by an index the models already declare (tests/query-indexes.test.ts):
 * ages are read from `_id` (an ObjectId holds its creation second) or the audit log's `at`, a
 * job's newest runs from `{jobId: 1, _id: -1}`. Jobs to trim are the jobs of runs created since
 * the last pass, found by walking `_id` from a mark kept in RETENTION_COLLECTION (and kept as
 * pending until trimmed), so jobs that did not run cost nothing. Deletes go in batches, each a
 * range of `_id` (or `at`) found by a limited read, with a pause between batches; a pass stops at a
 * cap on deleted documents and on time and the next pass goes on from there. Two workers sweeping
 * at once delete the same ranges: a delete of what is already gone deletes nothing, so that is
 * harmless.
 */

/** Where the mark of the last run whose job was looked at is kept (one document)... */
export const RETENTION_COLLECTION = 'history_retention';
/** ...and the jobs found that way and not yet trimmed, by _id (the job's). */
export const RETENTION_PENDING_COLLECTION = 'history_retention_jobs';
const RUNS_MARK_ID = 'runs';

/** A run in one of these is never deleted. */
const UNFINISHED = ['queued', 'running'] as const;
/** Every finished status other than succeeded: one limit for all of them. */
export const NOT_SUCCEEDED = RUN_STATUSES.filter((s) => s !== 'succeeded' && !UNFINISHED.includes(s as never));
const FINISHED = ['succeeded', ...NOT_SUCCEEDED];

const DAY_MS = 86_400_000;

/** How much one pass may do; the defaults suit a sweep every few minutes beside firing. */
export interface RetentionLimits {
  /**
   * Documents one delete may remove (and one read may return). Where ranges are not read from an
   * index (FerretDB, src/db/quirks.ts) every read costs the whole selection, so there a batch
   * defaults to the pass's cap.
   */
  batchSize: number;
  /** A pass stops once it has deleted this many documents... */
  maxDeletesPerPass: number;
  /** ...or after this long; the next pass goes on. */
  maxPassMs: number;
  /** Between two batches, so firing and the API get the database and the event loop. */
  pauseMs: number;
  /** Runs read per step when looking for the jobs that ran since the last pass (the cap likewise). */
  discoverBatch: number;
  /** Stops the pass between two batches. */
  signal?: AbortSignal;
}

export const DEFAULT_RETENTION_LIMITS: RetentionLimits = {
  batchSize: 500,
  maxDeletesPerPass: 20_000,
  maxPassMs: 10_000,
  pauseMs: 20,
  discoverBatch: 1000,
};

/** What one pass deleted, and whether it stopped at a cap with work left. */
export interface RetentionResult {
  runsOverLimit: number;
  runsTooOld: number;
  claims: number;
  auditEntries: number;
  reports: number;
  jobsTrimmed: number;
  /** True when the pass stopped at a cap (or was stopped); the next one goes on. */
  cutShort: boolean;
  ms: number;
}

/** An ObjectId no newer than `at`: every id created before `at`'s second is below it. */
const idAt = (at: Date) => Types.ObjectId.createFromTime(Math.floor(at.getTime() / 1000));
const daysBefore = (now: Date, days: number) => new Date(now.getTime() - days * DAY_MS);

type IdDoc = { _id: Types.ObjectId };

/** One pass: deletes what is past its limit, in batches, up to the pass's caps. */
export async function sweepHistory(
  deps: SchedulerDeps,
  now = new Date(),
  limits: Partial<RetentionLimits> = {},
): Promise<RetentionResult> {
  const { models, config, conn } = deps;
  const whole = capabilitiesOf(conn).indexedRanges
    ? {}
    : { batchSize: limits.maxDeletesPerPass ?? DEFAULT_RETENTION_LIMITS.maxDeletesPerPass, discoverBatch: 20_000 };
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
  /**
   * False once a cap is reached: no further batch starts. The time cap spares a step's first
   * batch, so every step makes progress in every pass, even where one read outlasts the cap.
   */
  const mayGoOn = (firstOfStep = false) => {
    const over =
      lim.signal?.aborted ||
      deleted >= lim.maxDeletesPerPass ||
      (!firstOfStep && Date.now() - started >= lim.maxPassMs);
    if (over) result.cutShort = true;
    return !over;
  };
  /** How many documents the next batch may delete. */
  const room = () => Math.max(1, Math.min(lim.batchSize, lim.maxDeletesPerPass - deleted));
  const pause = () => sleep(lim.pauseMs, lim.signal);

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
      const size = room();
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

  // Runs past the age limit, whatever their job (deleted jobs' runs go this way).
  if (config.RUNS_KEPT_DAYS > 0) {
    const before = idAt(daysBefore(now, config.RUNS_KEPT_DAYS));
    const old = { _id: { $lt: before }, status: { $in: FINISHED } };
    ({ count: result.runsTooOld } = await deleteInBatches(
      models.Run.collection,
      { status: old.status },
      '_id',
      false,
      (limit) => models.Run.collection.find<IdDoc>(old, { projection: { _id: 1 }, sort: { _id: 1 }, limit }).toArray(),
    ));
  }

  // Runs over the per-job counts, for the jobs that made runs since the last pass: the jobs found
  // are written down as pending before the mark moves past their runs, and each leaves the list
  // once trimmed, so a pass cut short loses nothing and the next one goes on where it stopped.
  const marks = conn.collection<{ _id: string; after: Types.ObjectId }>(RETENTION_COLLECTION);
  const pending = conn.collection<{ _id: Types.ObjectId }>(RETENTION_PENDING_COLLECTION);
  const stored = (await marks.findOne({ _id: RUNS_MARK_ID }))?.after;
  const floor = config.RUNS_KEPT_DAYS > 0 ? idAt(daysBefore(now, config.RUNS_KEPT_DAYS)) : undefined;
  let mark = stored && (!floor || stored > floor) ? stored : floor;
  const kept = [
    { status: 'succeeded' as unknown, keep: config.RUNS_KEPT_SUCCEEDED_PER_JOB },
    { status: { $in: NOT_SUCCEEDED }, keep: config.RUNS_KEPT_FAILED_PER_JOB },
  ];
  for (let first = true; mayGoOn(first); first = false) {
    const jobs = await pending.find({}, { sort: { _id: 1 }, limit: lim.discoverBatch }).toArray();
    for (const { _id: jobId } of jobs) {
      let done = true;
      for (const { status, keep } of kept) {
        const filter = { jobId, status };
        // The batch just past the `keep` newest: the job's index reads them in order.
        const trim = await deleteInBatches(models.Run.collection, filter, '_id', true, (limit) =>
          models.Run.collection
            .find<IdDoc>(filter, { projection: { _id: 1 }, sort: { _id: -1 }, skip: keep, limit })
            .toArray(),
        );
        result.runsOverLimit += trim.count;
        done &&= trim.done;
      }
      if (done) {
        await pending.deleteOne({ _id: jobId });
        result.jobsTrimmed++;
      }
      if (!mayGoOn()) break;
    }
    if (jobs.length) continue;
    const fresh = await models.Run.collection
      .find<{ _id: Types.ObjectId; jobId: Types.ObjectId }>(mark ? { _id: { $gt: mark } } : {}, {
        projection: { jobId: 1 },
        sort: { _id: 1 },
        limit: lim.discoverBatch,
      })
      .toArray();
    if (fresh.length === 0) break;
    const found = [...new Map(fresh.map((r) => [String(r.jobId), r.jobId])).values()];
    await pending
      .insertMany(
        found.map((_id) => ({ _id })),
        { ordered: false },
      )
      .catch((error) => {
        // Another worker wrote some down first: each is pending either way.
        if (!isDuplicateKey(error)) throw error;
      });
    mark = fresh.at(-1)!._id;
    await saveMark(marks, mark);
  }

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

/** Moves the mark forward only; two workers writing it at once leave the later one. */
async function saveMark(
  marks: { updateOne(filter: object, update: object, options: object): Promise<unknown> },
  after: Types.ObjectId,
): Promise<void> {
  try {
    await marks.updateOne({ _id: RUNS_MARK_ID }, { $max: { after } }, { upsert: true });
  } catch (error) {
    // Two first upserts raced (an upsert is a read then an insert on FerretDB): the other one wrote it.
    if (!isDuplicateKey(error)) throw error;
  }
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
