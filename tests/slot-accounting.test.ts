import { Types } from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slotsBetween } from '../src/scheduler/cron.js';
import { EARLY_WAKE_TOLERANCE_MS } from '../src/scheduler/fire.js';
import { depsOf, fireJob } from './helpers/firing.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// No worker here: nothing fires on its own, so each test decides who accounts for the slots.
let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const EVERY_SECOND = '* * * * * *';
const runsOf = (id: string) => h.scheduler.models.Run.find({ jobId: id }).sort({ scheduledFor: 1 }).lean();

/**
 * A job whose slots since `secondsAgo` came due unfired, as when the worker holding its partition
 * died: its bucket is one no partition has, so no tick would fire it either.
 */
async function overdueJob(owner: string, secondsAgo: number, fields: Record<string, unknown> = {}) {
  const { data: job } = await h.client(owner).POST('/api/cron/jobs', {
    body: { ...bodies.sendEmail(`${owner}-job`), cron: EVERY_SECOND, overlap: 'allow', ...fields },
  });
  const since = new Date(Math.floor(Date.now() / 1000) * 1000 - secondsAgo * 1000 - 500);
  await h.scheduler.models.CronJob.collection.updateOne(
    { _id: new Types.ObjectId(job!.id) },
    { $set: { slotsFrom: since, nextRunAt: new Date(since.getTime() + 500), bucket: 99_999 } },
  );
  return { id: job!.id, since };
}

/** Every slot of the job from `since` to `until` has exactly one `schedule` record. */
async function expectEachSlotOnce(id: string, since: Date, until: Date) {
  const expected = slotsBetween(EVERY_SECOND, 'UTC', since, until, 10_000).map((s) => s.getTime());
  const records = (await runsOf(id)).filter((r) => r.trigger === 'schedule');
  expect(records.map((r) => r.scheduledFor.getTime())).toEqual(expected);
  return records;
}

describe('every slot accounted for, whatever happens in between', () => {
  it('runs the slots a fire finds within the grace (late), and records only older ones missed', async () => {
    const { id, since } = await overdueJob('grace', 40, { misfirePolicy: 'skip' });
    const now = new Date();
    const outcome = await fireJob(depsOf(h, 'w-grace'), id, now);

    // A tick counts a slot a hair ahead of its clock as come (its timer may wake early).
    const records = await expectEachSlotOnce(id, since, new Date(now.getTime() + EARLY_WAKE_TOLERANCE_MS));
    const age = (r: { scheduledFor: Date }) => now.getTime() - r.scheduledFor.getTime();
    const missed = records.filter((r) => r.status === 'missed');
    const queued = records.filter((r) => r.status === 'queued');
    expect(missed.length + queued.length).toBe(records.length);
    expect(missed.every((r) => age(r) > h.config.MISFIRE_GRACE_MS)).toBe(true);
    expect(queued.every((r) => age(r) <= h.config.MISFIRE_GRACE_MS)).toBe(true);
    // 40 s of slots with a 30 s grace: about ten missed, about thirty run late.
    expect(missed.length).toBeGreaterThanOrEqual(9);
    expect(queued.length).toBeGreaterThanOrEqual(29);
    expect(outcome).toMatchObject({ missed: missed.length, queued: queued.length, duplicates: 0 });
    const job = await h.scheduler.models.CronJob.findById(id).lean();
    expect(job!.lastSlotAt!.getTime()).toBe(records.at(-1)!.scheduledFor.getTime());
  });

  it('a pause records the slots that came due before it: none dropped, none after it', async () => {
    const { id, since } = await overdueJob('pause', 5);
    const res = await h
      .client('pause')
      .PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: false } });
    expect(res.data).toMatchObject({ enabled: false, nextRunAt: null });
    const pausedAt = new Date();
    const records = await expectEachSlotOnce(id, since, pausedAt);
    // Within the grace: each runs, late, through Agenda for whichever worker comes.
    expect(records.length).toBeGreaterThanOrEqual(5);
    expect(records.every((r) => r.status === 'queued')).toBe(true);
    expect(await h.conn.collection('agendaJobs').countDocuments({ 'data.jobId': id })).toBe(records.length);
    // Resumed, the paused period owes nothing.
    await h.client('pause').PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: true } });
    const resumed = await h.scheduler.models.CronJob.findById(id).lean();
    const after = await fireJob(depsOf(h, 'w-pause'), id, new Date(resumed!.slotsFrom.getTime() + 300));
    expect(after.missed).toBe(0);
    expect((await runsOf(id)).filter((r) => r.scheduledFor < resumed!.slotsFrom)).toHaveLength(records.length);
  });

  it('a change of cron records the old schedule’s due slots first; a delete records them too', async () => {
    const edited = await overdueJob('edit', 4);
    await h
      .client('edit')
      .PATCH('/api/cron/jobs/{id}', { params: { path: { id: edited.id } }, body: { cron: '0 0 * * * *' } });
    const old = await expectEachSlotOnce(edited.id, edited.since, new Date());
    const job = await h.scheduler.models.CronJob.findById(edited.id).lean();
    expect(job!.cron).toBe('0 0 * * * *');
    // The new schedule's slots start after the edit, past every slot of the old one recorded.
    expect(job!.slotsFrom.getTime()).toBeGreaterThanOrEqual(old.at(-1)!.scheduledFor.getTime());

    const deleted = await overdueJob('delete', 4);
    const res = await h.client('delete').DELETE('/api/cron/jobs/{id}', { params: { path: { id: deleted.id } } });
    expect(res.response.status).toBe(204);
    const records = await expectEachSlotOnce(deleted.id, deleted.since, new Date());
    // Their runs will never start: recorded cancelled, with the reason.
    expect(records.every((r) => r.status === 'cancelled')).toBe(true);
    expect(await h.conn.collection('agendaJobs').countDocuments({ 'data.jobId': deleted.id })).toBe(0);
  });
});
