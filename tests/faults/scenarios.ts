/**
 * Fault scenarios on real processes: API and workers started from their entry points, a real
 * FerretDB/MongoDB, a real SMTP server whose behaviour each job picks (tests/helpers/smtp.ts).
 * Each scenario injects its fault, then returns what the runs collection and the SMTP server
 * show. The tests in this folder run them small and assert; `npm run faults` runs them large
 * and prints the figures.
 */
import { rm } from 'node:fs/promises';
import mongoose, { Types } from 'mongoose';
import { startLocalDb } from '../../src/db/index.js';
import type { Models } from '../../src/models/index.js';
import { slotsBetween } from '../../src/scheduler/cron.js';
import { type Cluster, startCluster } from '../helpers/cluster.js';
import { uriWithDb, waitFor } from '../helpers/harness.js';
import { runIdOf, type Smtp, startSmtp } from '../helpers/smtp.js';

const EXECUTED = new Set(['running', 'succeeded', 'failed', 'timedOut', 'interrupted']);

export interface Accounting {
  jobs: number;
  /** Slots the cron gave between each job's start of accounting and its last accounted slot. */
  slots: number;
  /** Slots with no record at all: must be 0. */
  unrecorded: number;
  /** Slots executed more than once: must be 0. */
  duplicates: number;
  /** Records at instants the cron never gave: must be 0. */
  phantom: number;
  byStatus: Record<string, number>;
  /** Successful runs whose email never arrived, and emails of no successful run or sent twice: must be 0. */
  sideEffectMismatches: number;
  deliveries: number;
  /** Run start minus slot, for runs on time (trigger schedule). */
  lagMs: { p50: number; p99: number; max: number };
  byWorker: Record<string, number>;
}

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0;

/**
 * Checks every job's slots against what was recorded: each slot the cron gave in
 * (slotsFrom, lastSlotAt] has exactly one record of trigger `schedule` (run, missed or skipped)
 * and is executed at most once; and every successful run's email arrived exactly once.
 */
export async function account(models: Models, jobIds: string[], smtp?: Smtp): Promise<Accounting> {
  const result: Accounting = {
    jobs: jobIds.length,
    slots: 0,
    unrecorded: 0,
    duplicates: 0,
    phantom: 0,
    byStatus: {},
    sideEffectMismatches: 0,
    deliveries: 0,
    lagMs: { p50: 0, p99: 0, max: 0 },
    byWorker: {},
  };
  const lags: number[] = [];
  const succeeded = new Set<string>();
  for (const id of jobIds) {
    const job = await models.CronJob.findById(id).lean();
    if (!job) continue;
    const runs = await models.Run.find({ jobId: id }).lean();
    const expected = job.lastSlotAt
      ? slotsBetween(job.cron, job.timezone, job.slotsFrom, job.lastSlotAt, 1_000_000)
      : [];
    const wanted = new Set(expected.map((d) => d.getTime()));
    result.slots += expected.length;
    const recorded = new Map<number, number>();
    const executed = new Map<number, number>();
    for (const run of runs) {
      result.byStatus[run.status] = (result.byStatus[run.status] ?? 0) + 1;
      if (run.worker) result.byWorker[run.worker] = (result.byWorker[run.worker] ?? 0) + 1;
      if (run.status === 'succeeded') succeeded.add(String(run._id));
      if (run.trigger === 'manual') continue;
      const slot = run.scheduledFor.getTime();
      if (!wanted.has(slot) && slot > job.slotsFrom.getTime() && slot <= (job.lastSlotAt?.getTime() ?? 0))
        result.phantom++;
      if (run.trigger === 'schedule') recorded.set(slot, (recorded.get(slot) ?? 0) + 1);
      if (EXECUTED.has(run.status)) executed.set(slot, (executed.get(slot) ?? 0) + 1);
      if (run.trigger === 'schedule' && run.startedAt) lags.push(run.startedAt.getTime() - slot);
    }
    for (const slot of wanted) if (!recorded.has(slot)) result.unrecorded++;
    for (const count of executed.values()) if (count > 1) result.duplicates++;
  }
  if (smtp) {
    const seen = new Map<string, number>();
    for (const d of smtp.delivered) {
      const runId = runIdOf(d.messageId);
      if (runId) seen.set(runId, (seen.get(runId) ?? 0) + 1);
    }
    result.deliveries = [...seen.values()].reduce((n, c) => n + c, 0);
    for (const runId of succeeded) if (seen.get(runId) !== 1) result.sideEffectMismatches++;
    for (const [runId] of seen) if (!succeeded.has(runId)) result.sideEffectMismatches++;
  }
  lags.sort((a, b) => a - b);
  result.lagMs = { p50: percentile(lags, 50), p99: percentile(lags, 99), max: lags[lags.length - 1] ?? 0 };
  return result;
}

const email = (name: string, to: string, cron: string) => ({
  name,
  type: 'sendEmail' as const,
  cron,
  timezone: 'UTC',
  payload: { to, subject: name, template: 'plain' as const, params: { body: name } },
});

let created = 0;
/** `cron` may contain `{i}`, replaced by the job's index modulo `spread`, to spread jobs over the seconds. */
async function createJobs(
  cluster: Cluster,
  count: number,
  to: string,
  cron: string,
  extra: Record<string, unknown> = {},
  spread = 1,
) {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const api = await cluster.client(`owner-${i % 20}`);
    const { data, error } = await api.POST('/api/cron/jobs', {
      body: { ...email(`job-${++created}`, to, cron.replace('{i}', String(i % spread))), ...extra } as never,
    });
    if (!data) throw new Error(`create failed: ${JSON.stringify(error)}\n${cluster.api.output().slice(-3000)}`);
    ids.push(data.id);
  }
  return ids;
}

/** Pauses the jobs behind the API's back; retried, since an overloaded FerretDB may answer SQLITE_BUSY. */
async function pauseAll(cluster: Cluster, ids: string[]) {
  await waitFor(
    () =>
      pauseOnce(cluster, ids).then(
        () => true,
        () => false,
      ),
    { what: 'the jobs to pause', timeoutMs: 120_000, intervalMs: 1000 },
  );
}

async function pauseOnce(cluster: Cluster, ids: string[]) {
  await cluster.models.CronJob.updateMany(
    { _id: mongoose.trusted({ $in: ids }) },
    { $set: { enabled: false, status: 'paused', nextRunAt: null } },
  );
}

async function settled(models: Models, ids: string[], timeoutMs = 60_000) {
  const open = () =>
    models.Run.find({
      jobId: mongoose.trusted({ $in: ids }),
      status: mongoose.trusted({ $in: ['queued', 'running'] }),
    }).lean();
  try {
    await waitFor(async () => (await open()).length === 0, { what: 'runs to settle', timeoutMs, intervalMs: 250 });
  } catch (error) {
    // What is left, and what Agenda holds for it, says where it is stuck.
    const left = await open();
    const held = await models.Run.db
      .collection('agendaJobs')
      .find({ 'data.runId': { $in: left.map((r) => String(r._id)) } })
      .toArray();
    throw new Error(
      `${(error as Error).message}\nleft (${left.length}): ${JSON.stringify(left.slice(0, 5))}\nagenda: ${JSON.stringify(held.slice(0, 5))}`,
    );
  }
}

const lockedAgendaJobs = (cluster: Cluster) =>
  cluster.conn.collection('agendaJobs').countDocuments({ lockedAt: { $ne: null, $exists: true } });

export interface Database {
  uri: string;
  /** Stops and restarts the database when it is our own FerretDB (outage scenario). */
  own?: { stop(): Promise<void>; restart(): Promise<void>; close(): Promise<void> };
}

/** A private FerretDB for scenarios that stop the database. */
export async function ownDatabase(dir: string): Promise<Database & { own: NonNullable<Database['own']> }> {
  let db = await startLocalDb(dir);
  const port = db.port;
  return {
    uri: uriWithDb(db.uri, 'faults'),
    own: {
      stop: () => db.stop(),
      restart: async () => {
        db = await startLocalDb(dir, undefined, { port });
      },
      close: async () => {
        await db.stop();
        await rm(dir, { recursive: true, force: true });
      },
    },
  };
}

/**
 * 1. Several workers: each slot runs once, none is lost, side effects match the runs. Runs
 * until every job has `minRunsPerJob` successful runs, or for `durationMs` when given.
 */
export async function severalWorkers(o: {
  uri: string;
  workers: number;
  jobs: number;
  cron: string;
  spread?: number;
  minRunsPerJob?: number;
  durationMs?: number;
  timeoutMs: number;
  env?: Record<string, string>;
}) {
  const smtp = await startSmtp();
  // The jobs are created before the workers start, so creating many does not compete with
  // firing them; slots that pass meanwhile are (rightly) missed and counted apart.
  const cluster = await startCluster({ uri: o.uri, workers: 0, env: { SMTP_URL: smtp.url, ...o.env } });
  try {
    const createStarted = Date.now();
    const ids = await createJobs(cluster, o.jobs, 'someone@example.com', o.cron, {}, o.spread);
    const createMs = Date.now() - createStarted;
    await Promise.all(Array.from({ length: o.workers }, (_, i) => cluster.startWorker(`worker-${i + 1}`)));
    const started = Date.now();
    const objectIds = ids.map((id) => new Types.ObjectId(id));
    await waitFor(
      async () => {
        if (o.durationMs) return Date.now() - started >= o.durationMs;
        const counts = await cluster.models.Run.aggregate<{ _id: Types.ObjectId; n: number }>([
          { $match: { jobId: { $in: objectIds }, status: 'succeeded' } },
          { $group: { _id: '$jobId', n: { $sum: 1 } } },
        ]);
        return counts.length === ids.length && counts.every((c) => c.n >= (o.minRunsPerJob ?? 1));
      },
      { what: 'the scenario to run its course', timeoutMs: o.timeoutMs, intervalMs: 500 },
    );
    const ranForMs = Date.now() - started;
    // The workers stop cleanly (runs in progress finish or are interrupted): the end of the
    // scenario needs no write from an overloaded database, and every fire is then accounted for.
    await Promise.all(
      cluster.workers.map(async (w) => {
        w.child.kill('SIGTERM');
        await w.exited;
      }),
    );
    const stillQueued = await cluster.models.Run.countDocuments({
      jobId: mongoose.trusted({ $in: ids }),
      status: 'queued',
    });
    const accounting = await account(cluster.models, ids, smtp);
    const missedBeforeWorkers = await cluster.models.Run.countDocuments({
      status: 'missed',
      scheduledFor: mongoose.trusted({ $lt: new Date(started) }),
    });
    const cleanExits = cluster.workers.filter((w) => w.child.exitCode === 0).length;
    return {
      createMs,
      ranForMs,
      missedBeforeWorkers,
      stillQueued,
      accounting,
      locked: await lockedAgendaJobs(cluster),
      cleanExits,
    };
  } finally {
    await cluster.stop();
    await smtp.close();
  }
}

/** 2. kill -9 of the worker running a job: its run is interrupted, the schedule resumes elsewhere. */
export async function killedWorker(o: { uri: string; lockLifetimeMs: number }) {
  const smtp = await startSmtp();
  const policy = { sendEmail: { lockLifetimeMs: o.lockLifetimeMs, maxAttempts: 1, timeoutMs: 60_000 } };
  const cluster = await startCluster({
    uri: o.uri,
    workers: 2,
    env: { SMTP_URL: smtp.url, JOB_TYPE_POLICIES: JSON.stringify(policy) },
  });
  try {
    // Each run takes 4 s; a slot every 6 s.
    const [id] = await createJobs(cluster, 1, 'delay-4000@example.com', '*/6 * * * * *');
    const victim = await waitFor(() => cluster.models.Run.findOne({ jobId: id, status: 'running' }).lean(), {
      what: 'a run in progress',
      timeoutMs: 20_000,
    });
    const worker = cluster.workers.find((w) => w.name === victim.worker)!;
    worker.child.kill('SIGKILL');
    const killedAt = Date.now();
    await worker.exited;
    const interrupted = await waitFor(
      async () => {
        const run = await cluster.models.Run.findById(victim._id).lean();
        return run?.status === 'interrupted' && run;
      },
      { what: 'the run to be marked interrupted', timeoutMs: o.lockLifetimeMs * 3 + 20_000 },
    );
    const next = await waitFor(
      () =>
        cluster.models.Run.findOne({
          jobId: id,
          scheduledFor: mongoose.trusted({ $gt: victim.scheduledFor }),
          status: 'succeeded',
        }).lean(),
      { what: 'a later slot to run', timeoutMs: o.lockLifetimeMs * 3 + 30_000 },
    );
    // Nothing the dead worker held stays locked.
    await waitFor(
      async () =>
        (await cluster.conn
          .collection('agendaJobs')
          .countDocuments({ lastModifiedBy: worker.name, lockedAt: { $ne: null } })) === 0,
      { what: 'no Agenda job locked by the dead worker', timeoutMs: o.lockLifetimeMs * 3 + 10_000 },
    );
    // With the survivor stopped cleanly (its runs finished), nothing may still say running.
    const survivor = cluster.workers.find((w) => w !== worker)!;
    survivor.child.kill('SIGTERM');
    await survivor.exited;
    const job = await cluster.models.CronJob.findById(id).lean();
    return {
      killedWorker: worker.name,
      recoveryMs: interrupted.finishedAt!.getTime() - killedAt,
      resumedAfterMs: next.startedAt!.getTime() - killedAt,
      interruptedError: interrupted.error,
      nextRunWorker: next.worker,
      jobStatusAfter: job!.status,
      stillRunning: await cluster.models.Run.countDocuments({ status: 'running' }),
      lockedAfter: await lockedAgendaJobs(cluster),
      accounting: await account(cluster.models, [id!], smtp),
    };
  } finally {
    await cluster.stop();
    await smtp.close();
  }
}

/** 3. The database stops for a while: fast 503s, no crash, everything resumes without a restart. */
export async function databaseOutage(o: { dataDir: string; outageMs: number }) {
  const db = await ownDatabase(o.dataDir);
  const smtp = await startSmtp();
  const cluster = await startCluster({
    uri: db.uri,
    workers: 2,
    env: {
      SMTP_URL: smtp.url,
      MONGODB_SERVER_SELECTION_TIMEOUT_MS: '1000',
      MONGODB_SOCKET_TIMEOUT_MS: '2000',
      JOB_TYPE_POLICIES: JSON.stringify({ sendEmail: { lockLifetimeMs: 3000, maxAttempts: 1 } }),
    },
  });
  try {
    const ids = await createJobs(cluster, 3, 'someone@example.com', '*/2 * * * * *');
    await waitFor(async () => (await cluster.models.Run.countDocuments({ status: 'succeeded' })) >= 3, {
      what: 'runs before the outage',
      timeoutMs: 20_000,
    });
    const api = await cluster.client('outage');
    await db.own.stop();
    const stoppedAt = Date.now();
    const answers: { status: number; ms: number; problem: boolean }[] = [];
    const ready: number[] = [];
    while (Date.now() - stoppedAt < o.outageMs) {
      const t = Date.now();
      const res = await api.GET('/api/cron/jobs', { signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
      answers.push({
        status: res?.response.status ?? 0,
        ms: Date.now() - t,
        problem: /problem\+json/.test(res?.response.headers.get('content-type') ?? ''),
      });
      ready.push((await fetch(`${cluster.baseUrl}/readyz`, { signal: AbortSignal.timeout(30_000) })).status);
      await new Promise((r) => setTimeout(r, 500));
    }
    const aliveDuring = [cluster.api, ...cluster.workers].filter((p) => p.child.exitCode === null).length;
    await db.own.restart();
    const restartedAt = Date.now();
    await waitFor(async () => (await api.GET('/api/cron/jobs')).response.status === 200, {
      what: 'the API to answer again',
      timeoutMs: 60_000,
      intervalMs: 200,
    });
    const apiBackMs = Date.now() - restartedAt;
    const firstRunAfter = await waitFor(
      () =>
        cluster.models.Run.findOne({ status: 'succeeded', startedAt: mongoose.trusted({ $gt: new Date(restartedAt) }) })
          .sort({ startedAt: 1 })
          .lean(),
      { what: 'a run after the outage', timeoutMs: 60_000 },
    );
    // Slots after the outage run on their own schedule again, not only as a catch-up.
    await waitFor(
      () =>
        cluster.models.Run.exists({
          status: 'succeeded',
          trigger: 'schedule',
          scheduledFor: mongoose.trusted({ $gt: new Date(restartedAt + 2000) }),
        }),
      { what: 'an on-time run after the outage', timeoutMs: 60_000 },
    );
    await pauseAll(cluster, ids);
    await settled(cluster.models, ids);
    return {
      outageMs: restartedAt - stoppedAt,
      apiAnswers: answers.length,
      apiStatuses: [...new Set(answers.map((a) => a.status))],
      allProblemJson: answers.every((a) => a.problem),
      longestApiResponseMs: Math.max(...answers.map((a) => a.ms)),
      readyStatuses: [...new Set(ready)],
      processesAliveDuring: aliveDuring,
      processes: 1 + cluster.workers.length,
      apiBackMs,
      runsBackMs: firstRunAfter.startedAt!.getTime() - restartedAt,
      catchupRuns: await cluster.models.Run.countDocuments({ trigger: 'catchup' }),
      accounting: await account(cluster.models, ids, smtp),
    };
  } finally {
    await cluster.stop();
    await smtp.close();
    await db.own.close();
  }
}

/** 4. SIGTERM while runs are going: they finish or are interrupted at the deadline; nothing stays locked. */
export async function shutdownUnderLoad(o: { uri: string; drainMs: number; slowJobs: number }) {
  const smtp = await startSmtp();
  const cluster = await startCluster({
    uri: o.uri,
    workers: 1,
    env: {
      SMTP_URL: smtp.url,
      SHUTDOWN_TIMEOUT_MS: String(o.drainMs),
      JOB_TYPE_POLICIES: JSON.stringify({ sendEmail: { maxAttempts: 1, timeoutMs: 60_000 } }),
    },
  });
  try {
    const slow = await createJobs(
      cluster,
      o.slowJobs,
      `delay-${Math.floor(o.drainMs / 2)}@example.com`,
      '*/3 * * * * *',
      { overlap: 'allow' },
    );
    const [hang] = await createJobs(cluster, 1, 'hang@example.com', '*/3 * * * * *');
    const ids = [...slow, hang!];
    await waitFor(
      async () => {
        const running = await cluster.models.Run.find({ status: 'running' }).lean();
        return running.some((r) => String(r.jobId) === hang) && running.length >= Math.min(3, o.slowJobs + 1);
      },
      { what: 'several runs in progress, the hanging one among them', timeoutMs: 30_000 },
    );
    const inProgress = await cluster.models.Run.find({ status: 'running' }).lean();
    const [worker] = cluster.workers;
    const signalledAt = Date.now();
    worker!.child.kill('SIGTERM');
    const exitCode = await worker!.exited;
    const exitMs = Date.now() - signalledAt;
    const after = await cluster.models.Run.find({
      _id: mongoose.trusted({ $in: inProgress.map((r) => r._id) }),
    }).lean();
    await pauseAll(cluster, ids);
    return {
      exitCode,
      exitMs,
      inProgressAtSignal: inProgress.length,
      outcomes: after.map((r) => ({ hang: String(r.jobId) === hang, status: r.status, error: r.error })),
      locked: await lockedAgendaJobs(cluster),
      runningLeft: await cluster.models.Run.countDocuments({ status: 'running' }),
    };
  } finally {
    await cluster.stop();
    await smtp.close();
  }
}
