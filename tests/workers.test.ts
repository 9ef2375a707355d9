import { Job } from 'agenda';
import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketOf } from '../src/scheduler/buckets.js';
import { nextFire } from '../src/scheduler/cron.js';
import { tick } from '../src/scheduler/dispatch.js';
import { MISSED_RECORD_LIMIT } from '../src/scheduler/fire.js';
import { runWrites } from '../src/scheduler/run-outcome.js';
import { executeRun } from '../src/scheduler/runner.js';
import { depsOf as depsOfWorker, fireJob, viaAgenda } from './helpers/firing.js';
import { bodies, type Harness, startHarness, waitFor } from './helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const agendaJobs = () => h.conn.collection('agendaJobs');
const runsOf = (id: string) => h.scheduler.models.Run.find({ jobId: id }).sort({ scheduledFor: 1 }).lean();

const depsOf = (worker: string) => depsOfWorker(h, worker);

describe('several workers on one database', () => {
  it('accounts for a slot once when three workers fire it at once, and executes its run once', async () => {
    // A daily cron whose slot of last midnight is due: however the calls spread, they see the same slot.
    const { data: job } = await h
      .client('mw-claim')
      .POST('/api/cron/jobs', { body: { ...bodies.generateReport('claimed-once'), cron: '0 0 * * *' } });
    const lastMidnight = new Date(new Date().setUTCHours(0, 0, 0, 0));
    await h.scheduler.models.CronJob.updateOne(
      { _id: job!.id },
      { $set: { slotsFrom: new Date(lastMidnight.getTime() - 60_000) } },
    );
    // Three workers firing the same job at once, as when a lease's compare-and-set, a read then a
    // write on FerretDB, let each of them believe it holds the partition.
    await Promise.all(['w-1', 'w-2', 'w-3'].map((w) => fireJob(depsOf(w), job!.id)));
    const accounted = await runsOf(job!.id);
    // The slot was hours late: recorded missed, and one catch-up run queued for it (runOnce).
    expect(accounted.map((r) => [r.trigger, r.status, r.scheduledFor.getTime()])).toEqual(
      expect.arrayContaining([
        ['schedule', 'missed', lastMidnight.getTime()],
        ['catchup', 'queued', lastMidnight.getTime()],
      ]),
    );
    expect(accounted).toHaveLength(2);
    const catchup = accounted.find((r) => r.trigger === 'catchup')!;
    const runJob = () =>
      new Job(h.scheduler.agenda, {
        name: 'generateReport',
        data: { jobId: job!.id, runId: String(catchup._id) },
      } as never) as never;
    const runner = (w: string) => ({ ...depsOf(w), active: new Map(), writes: runWrites(depsOf(w)) });
    await Promise.all(['w-1', 'w-2', 'w-3'].map((w) => executeRun(runner(w), runJob())));
    const done = await h.scheduler.models.Run.findById(catchup._id).lean();
    expect(done).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(await h.scheduler.models.Report.countDocuments({ jobId: job!.id })).toBe(1);
  });

  it('makes no catch-up run for a late slot whose on-time run a killed worker recorded before moving lastSlotAt', async () => {
    const { data: job } = await h
      .client('mw-killed')
      .POST('/api/cron/jobs', { body: { ...bodies.generateReport('recorded-then-killed'), cron: '0 0 * * *' } });
    expect(job).toMatchObject({ misfirePolicy: 'runOnce' });
    const lastMidnight = new Date(new Date().setUTCHours(0, 0, 0, 0));
    await h.scheduler.models.CronJob.updateOne(
      { _id: job!.id },
      { $set: { slotsFrom: new Date(lastMidnight.getTime() - 60_000) } },
    );
    // What the killed worker left: the slot's on-time run, and lastSlotAt not yet moved past it.
    const { _id: firstRun } = await h.scheduler.models.Run.create({
      jobId: job!.id,
      ownerId: 'mw-killed',
      type: 'generateReport',
      scheduledFor: lastMidnight,
      trigger: 'schedule',
      status: 'succeeded',
      finishedAt: new Date(lastMidnight.getTime() + 1000),
    });
    const outcome = await fireJob(depsOf('worker-a'), job!.id);

    // Its `missed` record is refused as a duplicate of the run: the slot is the other worker's.
    expect(outcome).toMatchObject({ queued: 0, missed: 0, duplicates: 1 });
    const runs = await runsOf(job!.id);
    expect(runs.map((r) => String(r._id))).toEqual([String(firstRun)]);
    const after = await h.scheduler.models.CronJob.findById(job!.id).lean();
    expect(after!.lastSlotAt!.getTime()).toBe(lastMidnight.getTime());
  });

  it('after a downtime longer than the record limit, records the first slots missed and still runs the latest', async () => {
    const { data: job } = await h.client('mw-long').POST('/api/cron/jobs', {
      body: { ...bodies.generateReport('long-downtime'), cron: '* * * * * *', timezone: 'UTC' },
    });
    // Two hours of one slot a second went by unfired.
    await h.scheduler.models.CronJob.updateOne(
      { _id: job!.id },
      { $set: { slotsFrom: new Date(Date.now() - 2 * 3600_000) } },
    );
    const outcome = await fireJob(depsOf('worker-a'), job!.id);
    // The latest slot (the last whole second) is on time: it is queued as itself, after the
    // first thousand missed ones, not lost among the seven thousand left unrecorded.
    expect(outcome).toMatchObject({ missed: MISSED_RECORD_LIMIT, skipped: 0, queued: 1 });
    const missed = await h.scheduler.models.Run.find({ jobId: job!.id, status: 'missed' })
      .sort({ scheduledFor: 1 })
      .lean();
    expect(missed).toHaveLength(MISSED_RECORD_LIMIT);
    const queued = outcome.runs[0]!;
    expect(queued).toMatchObject({ trigger: 'schedule', status: 'queued' });
    expect(Date.now() - queued!.scheduledFor.getTime()).toBeLessThan(60_000);
    expect(queued!.scheduledFor.getTime() - missed[MISSED_RECORD_LIMIT - 1]!.scheduledFor.getTime()).toBeGreaterThan(
      3600_000,
    );
    await h.client('mw-long').DELETE('/api/cron/jobs/{id}', { params: { path: { id: job!.id } } });
  });

  it('two workers, and a third firing every partition beside them, still record each slot once', async () => {
    const second = await h.addWorker('worker-b');
    const { data: job } = await h
      .client('mw-two')
      .POST('/api/cron/jobs', { body: { ...bodies.generateReport('two-workers'), cron: '* * * * * *' } });
    // The two workers share the partitions; a third fires all of them each second as well, as when
    // a lease's compare-and-set (a read then a write on FerretDB) let two workers hold one.
    const all = Array.from({ length: h.config.SCHEDULER_PARTITIONS }, (_, p) => p);
    const intruder = depsOf('worker-x');
    const runs = await waitFor(
      async () => {
        await tick(intruder, all, viaAgenda(intruder));
        const r = await runsOf(job!.id);
        return r.length >= 5 && r;
      },
      { what: 'five runs', intervalMs: 1000 },
    );
    expect(runs.length).toBeGreaterThanOrEqual(5);
    await h
      .client('mw-two')
      .PATCH('/api/cron/jobs/{id}', { params: { path: { id: job!.id } }, body: { enabled: false } });
    const settled = await waitFor(
      async () => {
        const r = await runsOf(job!.id);
        return r.every((x) => x.status !== 'running' && x.status !== 'queued') && r;
      },
      { what: 'the last runs to finish' },
    );
    // Three firers contested these slots: each recorded once and executed at most once.
    const slots = settled.map((r) => r.scheduledFor.getTime());
    expect(new Set(slots).size).toBe(slots.length);
    expect(await h.scheduler.models.Report.countDocuments({ jobId: job!.id })).toBe(
      settled.filter((r) => r.status === 'succeeded').length,
    );
    await second.stop(5000);
  });
});

describe('reconcile on worker start', () => {
  it('schedules an enabled job without a next fire, clears a paused one, buckets an imported one, drops the old dispatcher', async () => {
    const api = h.client('reconciler');
    const { data: unscheduled } = await api.POST('/api/cron/jobs', { body: bodies.sendEmail('unscheduled') });
    const { data: paused } = await api.POST('/api/cron/jobs', {
      body: { ...bodies.sendEmail('paused'), enabled: false },
    });
    const { data: fine } = await api.POST('/api/cron/jobs', { body: bodies.sendEmail('fine') });
    const CronJob = h.scheduler.models.CronJob;
    await h.scheduler.reconcile();
    // The Agenda job that fired every schedule before partitions, as an upgraded install has it.
    await agendaJobs().insertOne({ name: 'cron-dispatch', data: {}, nextRunAt: new Date(), lockedAt: null });
    await CronJob.updateOne({ _id: unscheduled!.id }, { $set: { nextRunAt: null } });
    await CronJob.updateOne({ _id: paused!.id }, { $set: { nextRunAt: new Date() } });
    // Stored before jobs had buckets (or imported without one).
    await CronJob.collection.updateOne({ _id: new Types.ObjectId(fine!.id) }, { $unset: { bucket: '' } });

    expect(await h.scheduler.reconcile()).toEqual({ scheduled: 1, cleared: 1, bucketed: 1 });
    expect((await CronJob.findById(unscheduled!.id).lean())!.nextRunAt).toEqual(
      nextFire(unscheduled!.cron, unscheduled!.timezone),
    );
    expect((await CronJob.findById(paused!.id).lean())!.nextRunAt).toBeNull();
    expect((await CronJob.findById(fine!.id).lean())!.nextRunAt!.toISOString()).toBe(fine!.nextRunAt);
    expect((await CronJob.findById(fine!.id).lean())!.bucket).toBe(bucketOf(fine!.id));
    expect(await agendaJobs().countDocuments({ name: 'cron-dispatch' })).toBe(0);
    // A second pass finds nothing to do.
    expect(await h.scheduler.reconcile()).toEqual({ scheduled: 0, cleared: 0, bucketed: 0 });
  });

  it('never leaves a job on an old schedule when edits land while it runs', async () => {
    const api = h.client('reconcile-race');
    const ids: string[] = [];
    for (let i = 0; i < 8; i++)
      ids.push(
        (await api.POST('/api/cron/jobs', { body: { ...bodies.sendEmail(`race-${i}`), enabled: false } })).data!.id,
      );
    const crons = ['0 1 * * *', '0 2 * * *', '0 3 * * *', '0 4 * * *'];
    for (let round = 0; round < 4; round++) {
      // Reconcile and a burst of edits (cron changes, pauses, resumes) at the same time.
      await Promise.all([
        h.scheduler.reconcile(),
        ...ids.map((id, i) =>
          api.PATCH('/api/cron/jobs/{id}', {
            params: { path: { id } },
            body: { cron: crons[(round + i) % crons.length], enabled: (round + i) % 3 !== 0 },
          }),
        ),
      ]);
      for (const id of ids) {
        const job = await h.scheduler.models.CronJob.findById(id).lean();
        const expected = job!.enabled ? nextFire(job!.cron, job!.timezone) : null;
        expect(job!.nextRunAt, `round ${round}, job ${id}`).toEqual(expected);
      }
    }
  });
});

describe('run recovery', () => {
  it('queues again a queued run whose Agenda job is gone, cancels one whose job is gone, and drops spent run jobs', async () => {
    const api = h.client('recovery');
    const { data: job } = await api.POST('/api/cron/jobs', {
      body: { ...bodies.generateReport('orphan'), enabled: false },
    });
    const { data: gone } = await api.POST('/api/cron/jobs', {
      body: { ...bodies.generateReport('orphan-gone'), enabled: false },
    });
    const longAgo = new Date(Date.now() - 60 * 60_000);
    const queued = async (jobId: string) => {
      const run = await h.scheduler.models.Run.create({
        jobId,
        ownerId: 'recovery',
        type: 'generateReport',
        scheduledFor: new Date(),
        trigger: 'manual',
        status: 'queued',
      });
      // As if the worker that created it died before queuing its Agenda job, an hour ago.
      await h.scheduler.models.Run.collection.updateOne({ _id: run._id }, { $set: { createdAt: longAgo } });
      return run;
    };
    const orphan = await queued(job!.id);
    const orphanOfDeleted = await queued(gone!.id);
    await h.scheduler.models.CronJob.deleteOne({ _id: gone!.id });
    // A run job Agenda kept after a failed processor: unlocked, never due again.
    const spentRunId = String(new Types.ObjectId());
    await agendaJobs().insertOne({
      name: 'generateReport',
      data: { jobId: job!.id, runId: spentRunId },
      nextRunAt: null,
      lockedAt: null,
      type: 'normal',
      priority: 0,
    });

    await h.scheduler.startWorker(); // idempotent: the worker of this file
    await h.scheduler.recover();
    expect(await h.scheduler.models.Run.findById(orphanOfDeleted._id).lean()).toMatchObject({ status: 'cancelled' });
    expect(await agendaJobs().countDocuments({ 'data.runId': spentRunId })).toBe(0);
    // Queued again, the run executes.
    await waitFor(async () => (await h.scheduler.models.Run.findById(orphan._id).lean())?.status === 'succeeded', {
      what: 'the requeued run to run',
    });
  });
});
