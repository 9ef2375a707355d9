import { Types } from 'mongoose';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { connectDb } from '../src/db/index.js';
import type { Env } from '../src/env.js';
import { DELETED_JOBS_COLLECTION, models } from '../src/models/index.js';
import type { RUN_STATUSES } from '../src/models/run.model.js';
import type { SchedulerDeps } from '../src/scheduler/deps.js';
import {
  NOT_SUCCEEDED,
  RETENTION_COLLECTION,
  type RetentionResult,
  recordDeletedJob,
  startRetention,
  sweepHistory,
} from '../src/scheduler/retention.js';
import { bodies, type Harness, startHarness, waitFor } from './helpers/harness.js';

// Retention on the real local database (or MONGODB_URI's): history is inserted directly, as it
// would stand after months of firing, then swept by the same function the workers' timer calls.

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const DAY = 86_400_000;
const m = () => h.scheduler.models;
/** Deps with retention settings of the test's own, on the harness's connection or another. */
const depsWith = (settings: Partial<Env>, conn = h.conn): SchedulerDeps => ({
  agenda: h.scheduler.agenda,
  conn,
  models: conn === h.conn ? h.scheduler.models : models(conn),
  config: { ...h.config, ...settings },
  logger: h.logger,
});

let clock = 0;
/** An ObjectId created at `at`, unique within this file, increasing with `at` (and calls at one second). */
function idAt(at: Date): Types.ObjectId {
  const seconds = Math.floor(at.getTime() / 1000)
    .toString(16)
    .padStart(8, '0');
  return new Types.ObjectId(`${seconds}0000000000${(clock++).toString(16).padStart(6, '0')}`);
}

let jobCount = 0;
/** A job as the sweep sees it (its id and when it last ran), written directly: no worker fires it. */
async function insertJob(lastRunAt: Date | null = new Date()): Promise<Types.ObjectId> {
  const _id = new Types.ObjectId();
  await m().CronJob.collection.insertOne({
    _id,
    ownerId: 'retention-owner',
    name: `retention-${jobCount++}`,
    enabled: false,
    nextRunAt: null,
    lastRunAt,
  });
  return _id;
}
const jobsRanAt = (n: number, lastRunAt?: Date | null) =>
  Promise.all(Array.from({ length: n }, () => insertJob(lastRunAt)));

type Status = (typeof RUN_STATUSES)[number];
/** Inserts runs of `jobId` with these statuses, oldest first, created from `start` a second apart; returns their ids. */
async function insertRuns(jobId: Types.ObjectId, statuses: Status[], start = new Date(Date.now() - DAY)) {
  const docs = statuses.map((status, i) => {
    const at = new Date(start.getTime() + i * 1000);
    return {
      _id: idAt(at),
      jobId,
      ownerId: 'retention-owner',
      type: 'generateReport',
      scheduledFor: at,
      trigger: 'schedule',
      status,
      startedAt: status === 'queued' ? null : at,
      finishedAt: status === 'queued' || status === 'running' ? null : at,
      attempts: 1,
      createdAt: at,
      updatedAt: at,
    };
  });
  for (let i = 0; i < docs.length; i += 1000) await m().Run.collection.insertMany(docs.slice(i, i + 1000));
  return docs.map((d) => d._id);
}

const ids = (docs: { _id: Types.ObjectId }[]) => docs.map((d) => String(d._id)).sort();
const runsOf = (jobId: Types.ObjectId) => m().Run.collection.find({ jobId }).toArray();
const cycle = <T>(items: readonly T[], n: number) => Array.from({ length: n }, (_, i) => items[i % items.length]!);

beforeEach(async () => {
  for (const model of [m().Run, m().RunClaim, m().AuditLog, m().Report, m().CronJob])
    await model.collection.deleteMany({});
  for (const name of [RETENTION_COLLECTION, DELETED_JOBS_COLLECTION]) await h.conn.collection(name).deleteMany({});
});

describe('runs per job', () => {
  it('keeps the newest succeeded and the newest not-succeeded runs apart, and never a queued or running one', async () => {
    const [job, other] = (await jobsRanAt(2)) as [Types.ObjectId, Types.ObjectId];
    // Oldest first: 30 succeeded and 30 of every other finished status mixed, interleaved, then
    // old unfinished runs among them and at the end.
    const statuses: Status[] = [];
    for (let i = 0; i < 30; i++) statuses.push('succeeded', NOT_SUCCEEDED[i % NOT_SUCCEEDED.length]!);
    statuses.splice(3, 0, 'queued', 'running');
    statuses.push('running', 'queued');
    const all = await insertRuns(job, statuses);
    const kept = await insertRuns(other, cycle(['succeeded', 'failed'] as const, 8));

    const result = await sweepHistory(depsWith({ RUNS_KEPT_SUCCEEDED_PER_JOB: 10, RUNS_KEPT_FAILED_PER_JOB: 5 }));

    const left = await runsOf(job);
    const newest = (pick: (s: Status) => boolean, n: number) =>
      all
        .filter((_, i) => pick(statuses[i]!))
        .slice(-n)
        .map(String);
    const expected = [
      ...newest((s) => s === 'succeeded', 10),
      ...newest((s) => (NOT_SUCCEEDED as Status[]).includes(s), 5),
      ...newest((s) => s === 'queued' || s === 'running', 4),
    ].sort();
    expect(ids(left)).toEqual(expected);
    expect(result).toMatchObject({ runsOverLimit: 45, runsTooOld: 0, jobsTrimmed: 2, cutShort: false });
    // The other job is under both limits: untouched.
    expect(ids(await runsOf(other))).toEqual(kept.map(String).sort());
  });

  it('visits the jobs that ran since the last round (all at the first), without quiet ones', async () => {
    const quiet = await insertJob(new Date(Date.now() - 3_600_000));
    const settings = { RUNS_KEPT_SUCCEEDED_PER_JOB: 3, RUNS_KEPT_FAILED_PER_JOB: 3 };
    const noQuiet = { quietJobsPerPass: 0 };
    await insertRuns(quiet, cycle(['succeeded'] as const, 5));
    expect(await sweepHistory(depsWith(settings), new Date(), noQuiet)).toMatchObject({
      runsOverLimit: 2,
      jobsTrimmed: 1,
    });
    // Nothing ran: no job is read again.
    expect(await sweepHistory(depsWith(settings), new Date(), noQuiet)).toMatchObject({
      runsOverLimit: 0,
      jobsTrimmed: 0,
    });
    const busy = await insertJob(new Date());
    await insertRuns(busy, cycle(['succeeded'] as const, 6), new Date());
    expect(await sweepHistory(depsWith(settings), new Date(), noQuiet)).toMatchObject({
      runsOverLimit: 3,
      jobsTrimmed: 1,
    });
    expect((await runsOf(quiet)).length).toBe(3);
    expect((await runsOf(busy)).length).toBe(3);
  });

  it('visits the jobs that did not run a slice per pass in turn, so their old runs go too', async () => {
    // A first pass with no job starts the rounds: from then on only jobs that ran are due.
    await sweepHistory(depsWith({}));
    const quiet = await jobsRanAt(5, new Date(Date.now() - 3_600_000));
    for (const job of quiet) await insertRuns(job, ['succeeded', 'failed'], new Date(Date.now() - 40 * DAY));
    const settings = { RUNS_KEPT_DAYS: 30 };
    const passes: RetentionResult[] = [];
    for (let i = 0; i < 3; i++)
      passes.push(await sweepHistory(depsWith(settings), new Date(), { quietJobsPerPass: 2 }));
    // 2 + 2 + 2 (the fifth, then the first again): every job's old runs, each once.
    expect(passes.map((p) => [p.jobsTrimmed, p.runsTooOld])).toEqual([
      [2, 4],
      [2, 4],
      [2, 2],
    ]);
    for (const job of quiet) expect(await runsOf(job)).toEqual([]);
  });

  it('a pass cut short leaves the untrimmed jobs pending, so every pass makes progress', async () => {
    // Last run an hour ago: the first round visits them all, the next one none.
    const jobs = await jobsRanAt(12, new Date(Date.now() - 3_600_000));
    for (const job of jobs) await insertRuns(job, cycle(['succeeded'] as const, 12));
    const settings = { RUNS_KEPT_SUCCEEDED_PER_JOB: 2 };
    // Each pass may delete 15 runs: one job and a half. No job is looked at again once trimmed.
    const passes: RetentionResult[] = [];
    const limits = { maxDeletesPerPass: 15, pauseMs: 0, quietJobsPerPass: 0 };
    while (passes.length < 12 && (passes.at(-1)?.cutShort ?? true))
      passes.push(await sweepHistory(depsWith(settings), new Date(), limits));
    expect(passes.length).toBeGreaterThanOrEqual(8);
    expect(passes.at(-1)!.cutShort).toBe(false);
    expect(passes.reduce((sum, p) => sum + p.jobsTrimmed, 0)).toBe(12);
    for (const job of jobs) expect((await runsOf(job)).length).toBe(2);
  });

  it('a pass past its time cap still takes one batch of each step, so passes slower than the cap progress', async () => {
    const jobs = await jobsRanAt(5);
    for (const job of jobs) await insertRuns(job, cycle(['succeeded'] as const, 6));
    await insertRuns(jobs[0]!, cycle(['failed'] as const, 3), new Date(Date.now() - 40 * DAY));
    const settings = { RUNS_KEPT_SUCCEEDED_PER_JOB: 2, RUNS_KEPT_DAYS: 30 };
    const passes: RetentionResult[] = [];
    const left = async () => Promise.all(jobs.map(async (job) => (await runsOf(job)).length));
    while (passes.length < 10 && (await left()).some((n) => n > 2))
      passes.push(await sweepHistory(depsWith(settings), new Date(), { maxPassMs: 0, pauseMs: 0 }));
    expect(await left()).toEqual([2, 2, 2, 2, 2]);
    expect(passes.every((p) => p.cutShort)).toBe(true);
    expect(passes.reduce((sum, p) => sum + p.runsTooOld, 0)).toBe(3);
  });
});

describe('runs by age', () => {
  it('deletes finished runs older than RUNS_KEPT_DAYS, but not queued or running ones', async () => {
    const job = await insertJob();
    const old = new Date(Date.now() - 40 * DAY);
    const oldRuns = await insertRuns(job, ['succeeded', 'failed', 'queued', 'running', 'missed'], old);
    const recent = await insertRuns(job, ['succeeded', 'failed'], new Date(Date.now() - 20 * DAY));

    const result = await sweepHistory(depsWith({ RUNS_KEPT_DAYS: 30 }));

    expect(result).toMatchObject({ runsTooOld: 3, runsOverLimit: 0 });
    expect(ids(await runsOf(job))).toEqual([oldRuns[2]!, oldRuns[3]!, ...recent].map(String).sort());
  });

  it("cuts a deleted job's runs to the counts, then deletes them RUNS_KEPT_DAYS after the delete", async () => {
    const deletedJob = new Types.ObjectId();
    const deletedAt = new Date(Date.now() - 10 * DAY);
    const statuses = [...cycle(['succeeded'] as const, 5), 'running', 'failed'] as Status[];
    const runs = await insertRuns(deletedJob, statuses, new Date(Date.now() - 12 * DAY));
    await recordDeletedJob(h, deletedJob, deletedAt);
    const settings = { RUNS_KEPT_DAYS: 30, RUNS_KEPT_SUCCEEDED_PER_JOB: 2 };
    const entries = () => h.conn.collection(DELETED_JOBS_COLLECTION).find({}).toArray();

    expect(await sweepHistory(depsWith(settings))).toMatchObject({ runsOverLimit: 3, runsTooOld: 0, jobsTrimmed: 1 });
    expect(ids(await runsOf(deletedJob))).toEqual(runs.slice(3).map(String).sort());
    // Trimmed once: the next passes leave it alone until its runs are due.
    expect(await sweepHistory(depsWith(settings))).toMatchObject({ jobsTrimmed: 0 });
    expect(await entries()).toMatchObject([{ _id: deletedJob, trimmed: true }]);

    const later = new Date(Date.now() + 21 * DAY);
    expect(await sweepHistory(depsWith(settings), later)).toMatchObject({ runsTooOld: 3, jobsTrimmed: 1 });
    expect(ids(await runsOf(deletedJob))).toEqual([String(runs[5])]);
    expect(await entries()).toEqual([]);
  });

  it('the API writes a deleted job down for the sweep', async () => {
    const api = h.client('retention-api');
    const { data: job } = await api.POST('/api/cron/jobs', { body: bodies.generateReport() });
    const before = new Date();
    expect((await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id: job!.id } } })).response.status).toBe(204);
    const [entry] = await h.conn.collection(DELETED_JOBS_COLLECTION).find({}).toArray();
    expect(String(entry?._id)).toBe(job!.id);
    expect(entry!.deletedAt.getTime()).toBeGreaterThanOrEqual(before.getTime() - 1000);
  });

  it('keeps every age with RUNS_KEPT_DAYS=0', async () => {
    const job = await insertJob();
    await insertRuns(job, ['succeeded', 'failed'], new Date(Date.now() - 400 * DAY));
    expect(await sweepHistory(depsWith({ RUNS_KEPT_DAYS: 0 }))).toMatchObject({ runsTooOld: 0 });
    expect((await runsOf(job)).length).toBe(2);
  });
});

describe('claims, audit entries and reports', () => {
  it("deletes the claims of finished and deleted runs, keeps queued and running runs' claims", async () => {
    const job = new Types.ObjectId();
    const [queued, running, succeeded, interrupted] = await insertRuns(job, [
      'queued',
      'running',
      'succeeded',
      'interrupted',
    ]);
    const gone = new Types.ObjectId();
    const claims = [queued, running, succeeded, interrupted, gone].map((_id) => ({
      _id,
      worker: 'w',
      createdAt: new Date(),
    }));
    await m().RunClaim.collection.insertMany(claims);

    expect(await sweepHistory(depsWith({}))).toMatchObject({ claims: 3 });
    expect(ids(await m().RunClaim.collection.find({}).toArray())).toEqual([queued, running].map(String).sort());
  });

  it('deletes audit entries past AUDIT_KEPT_DAYS and reports past REPORTS_KEPT_DAYS', async () => {
    const now = Date.now();
    const entry = (daysAgo: number) => ({
      actorId: 'a',
      action: 'create',
      jobId: new Types.ObjectId(),
      ownerId: 'o',
      changes: null,
      at: new Date(now - daysAgo * DAY),
    });
    await m().AuditLog.collection.insertMany([entry(400), entry(366), entry(364), entry(1)]);
    const report = (daysAgo: number) => {
      const at = new Date(now - daysAgo * DAY);
      return { _id: idAt(at), runId: new Types.ObjectId(), jobId: new Types.ObjectId(), ownerId: 'o', createdAt: at };
    };
    await m().Report.collection.insertMany([report(100), report(91), report(89), report(1)]);

    const result = await sweepHistory(depsWith({ AUDIT_KEPT_DAYS: 365, REPORTS_KEPT_DAYS: 90 }));

    expect(result).toMatchObject({ auditEntries: 2, reports: 2 });
    const ages = (docs: { createdAt?: Date; at?: Date }[]) =>
      docs.map((d) => Math.round((now - (d.at ?? d.createdAt)!.getTime()) / DAY)).sort((a, b) => a - b);
    expect(ages(await m().AuditLog.collection.find<{ at: Date }>({}).toArray())).toEqual([1, 364]);
    expect(ages(await m().Report.collection.find<{ createdAt: Date }>({}).toArray())).toEqual([1, 89]);
    // 0 keeps everything.
    await m().AuditLog.collection.insertOne(entry(5000));
    expect(await sweepHistory(depsWith({ AUDIT_KEPT_DAYS: 0, REPORTS_KEPT_DAYS: 0 }))).toMatchObject({
      auditEntries: 0,
      reports: 0,
    });
    expect(await m().AuditLog.collection.countDocuments({})).toBe(3);
  });
});

describe('sweeping at scale and side by side', () => {
  const settings = { RUNS_KEPT_SUCCEEDED_PER_JOB: 100, RUNS_KEPT_FAILED_PER_JOB: 50, RUNS_KEPT_DAYS: 30 };

  it('two workers sweeping at once delete each run once and leave the same history', async () => {
    const jobs = await jobsRanAt(4);
    for (const job of jobs) await insertRuns(job, cycle(['succeeded', 'failed', 'succeeded'] as const, 300));
    await insertRuns(jobs[0]!, cycle(['succeeded'] as const, 50), new Date(Date.now() - 40 * DAY));
    const second = await connectDb(inject('mongoUri'), h.config, h.dbName);
    try {
      const passes = await Promise.all([
        sweepHistory(depsWith(settings), new Date(), { batchSize: 40, pauseMs: 0 }),
        sweepHistory(depsWith(settings, second), new Date(), { batchSize: 40, pauseMs: 0 }),
      ]);
      const total = (key: keyof RetentionResult) => passes.reduce((sum, p) => sum + Number(p[key]), 0);
      // 4 jobs x (200 succeeded - 100 kept + 100 not - 50 kept), and the 50 old runs.
      expect(total('runsOverLimit')).toBe(4 * 150);
      expect(total('runsTooOld')).toBe(50);
    } finally {
      await second.close();
    }
    for (const job of jobs) {
      const left = await runsOf(job);
      expect(left.filter((r) => r.status === 'succeeded').length).toBe(100);
      expect(left.filter((r) => r.status === 'failed').length).toBe(50);
    }
  });

  it('a large history (20 000 runs) is cut down to the limits by capped passes', { timeout: 180_000 }, async () => {
    const jobs = await jobsRanAt(10);
    // Per job 1 900 recent runs (2 in 3 succeeded) and 100 older than the age limit.
    for (const job of jobs) {
      await insertRuns(job, cycle(['succeeded'] as const, 100), new Date(Date.now() - 60 * DAY));
      await insertRuns(job, cycle(['succeeded', 'succeeded', 'timedOut'] as const, 1900));
    }
    expect(await m().Run.collection.countDocuments({})).toBe(20_000);

    const cap = 5000;
    const passes: RetentionResult[] = [];
    await waitFor(
      async () => {
        passes.push(await sweepHistory(depsWith(settings), new Date(), { maxDeletesPerPass: cap, pauseMs: 0 }));
        return !passes.at(-1)!.cutShort;
      },
      { timeoutMs: 150_000, intervalMs: 0, what: 'a pass that finishes' },
    );
    for (const p of passes) expect(p.runsOverLimit + p.runsTooOld).toBeLessThanOrEqual(cap + 500);
    const deleted = passes.reduce((sum, p) => sum + p.runsOverLimit + p.runsTooOld, 0);
    expect(deleted).toBe(20_000 - 10 * 150);
    expect(await m().Run.collection.countDocuments({})).toBe(10 * 150);
  });
});

describe('startRetention', () => {
  it('sweeps on its timer until stopped', async () => {
    const job = await insertJob();
    await insertRuns(job, cycle(['succeeded'] as const, 8));
    const stop = startRetention(depsWith({ HISTORY_SWEEP_INTERVAL_MS: 100, RUNS_KEPT_SUCCEEDED_PER_JOB: 2 }));
    try {
      await waitFor(async () => (await runsOf(job)).length === 2, { what: 'the timer to trim the job' });
    } finally {
      await stop();
    }
  });

  it('logs a failing pass and goes on', async () => {
    const job = await insertJob();
    await insertRuns(job, cycle(['succeeded'] as const, 4));
    const conn = await connectDb(inject('mongoUri'), h.config, h.dbName);
    const warnings: string[] = [];
    const logger = Object.assign(Object.create(h.logger), {
      warn: (_: unknown, message: string) => warnings.push(message),
    }) as typeof h.logger;
    const stop = startRetention({ ...depsWith({ HISTORY_SWEEP_INTERVAL_MS: 100 }, conn), logger });
    try {
      // Its connection closed: every pass fails, the timer keeps going.
      await conn.close();
      await waitFor(async () => warnings.filter((w) => w === 'history sweep failed').length >= 2, {
        what: 'two failed passes logged',
      });
    } finally {
      await stop();
    }
  });
});
