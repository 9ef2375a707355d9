import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodies, type Harness, startHarness, waitFor } from './helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ worker: true });
});
afterAll(() => h.stop());

const everySecond = (name: string) => ({ ...bodies.generateReport(name), cron: '* * * * * *' });
const runsOf = (id: string) => h.scheduler.models.Run.find({ jobId: id }).sort({ scheduledFor: 1 }).lean();

describe('a job created through the API fires on its own', () => {
  it('fires a seconds cron within seconds, records each slot once and updates the job', async () => {
    const api = h.client('sched-owner');
    const { data: job } = await api.POST('/api/cron/jobs', { body: everySecond('every-second') });
    const id = job!.id;

    const runs = await waitFor(
      async () => {
        const r = await runsOf(id);
        return r.filter((x) => x.status === 'succeeded').length >= 3 && r;
      },
      { what: 'three finished runs' },
    );

    // Each slot once, each on a whole second (the slot, not Agenda's start time).
    const slots = runs.map((r) => r.scheduledFor.getTime());
    expect(new Set(slots).size).toBe(slots.length);
    expect(slots.every((s) => s % 1000 === 0)).toBe(true);
    const done = runs.find((r) => r.status === 'succeeded')!;
    expect(done).toMatchObject({ trigger: 'schedule', error: null, worker: 'worker-a' });
    expect(done.durationMs).toBeGreaterThanOrEqual(0);
    expect(done.finishedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt!.getTime());
    // The run is for the slot it started in, not one from long ago.
    expect(done.startedAt!.getTime() - done.scheduledFor.getTime()).toBeLessThan(5000);
    expect(done.result).toMatchObject({ total: expect.any(Number) });

    const { data: after } = await api.GET('/api/cron/jobs/{id}', { params: { path: { id } } });
    expect(after!.lastRunAt).not.toBeNull();
    expect(['idle', 'running']).toContain(after!.status);
    // What the runner stored (the API computes nextRunAt afresh): the next whole second after the run.
    const stored = await h.scheduler.models.CronJob.findById(id).lean();
    expect(stored!.nextRunAt!.getTime()).toBeGreaterThan(stored!.lastRunAt!.getTime());
    expect(stored!.nextRunAt!.getTime() % 1000).toBe(0);

    // The runs route shows them newest first.
    const { data: page } = await api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id }, query: { limit: 2 } } });
    expect(page!.items).toHaveLength(2);
    expect(page!.nextCursor).not.toBeNull();
    expect(new Date(page!.items[0]!.scheduledFor).getTime()).toBeGreaterThan(
      new Date(page!.items[1]!.scheduledFor).getTime(),
    );
    await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id } } });
  });

  it('stops firing while paused and fires again after resume', async () => {
    const api = h.client('sched-pause');
    const { data: job } = await api.POST('/api/cron/jobs', { body: everySecond('pausable') });
    const id = job!.id;
    await waitFor(async () => (await runsOf(id)).length >= 1, { what: 'a first run' });

    await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: false } });
    // A run already claimed may still finish; once it has, nothing new may start.
    const settled = await waitFor(
      async () => {
        const r = await runsOf(id);
        return r.every((x) => x.status !== 'running') && r;
      },
      { what: 'in-flight runs to finish' },
    );
    const pausedAt = Date.now();
    // Three slots' worth of time with no fire: a fixed window is the claim itself ("no fires
    // while paused"), so it is waited for, not polled.
    await new Promise((r) => setTimeout(r, 3000));
    const during = await runsOf(id);
    expect(during.filter((r) => r.createdAt.getTime() > pausedAt + 500)).toEqual([]);
    expect(during.length).toBeLessThanOrEqual(settled.length + 1);
    const { data: paused } = await api.GET('/api/cron/jobs/{id}', { params: { path: { id } } });
    expect(paused).toMatchObject({ enabled: false, status: 'paused', nextRunAt: null });

    const resumedAt = Date.now();
    await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: true } });
    await waitFor(async () => (await runsOf(id)).some((r) => r.scheduledFor.getTime() >= resumedAt), {
      what: 'a run after resume',
    });
    // Resuming does not replay the slots missed while paused.
    const after = await runsOf(id);
    expect(
      after.filter((r) => r.scheduledFor.getTime() > pausedAt + 1000 && r.scheduledFor.getTime() < resumedAt - 1000),
    ).toEqual([]);
    await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id } } });
  });

  it('runs a paused job exactly once on run-now, with trigger manual', async () => {
    const api = h.client('sched-manual');
    const { data: job } = await api.POST('/api/cron/jobs', {
      body: { ...bodies.generateReport('manual'), enabled: false },
    });
    const id = job!.id;
    const queued = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id } } });
    expect(queued.response.status).toBe(202);
    expect(queued.data).toMatchObject({ jobId: id, trigger: 'manual', status: 'queued', startedAt: null });

    const done = await waitFor(
      async () => {
        const { data } = await api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id } } });
        const run = data!.items.find((r) => r.id === queued.data!.id);
        return run?.status === 'succeeded' && run;
      },
      { what: 'the manual run to succeed' },
    );
    expect(done).toMatchObject({ trigger: 'manual', worker: 'worker-a', error: null });
    const report = await h.scheduler.models.Report.findOne({ runId: done.id }).lean();
    expect(report).toMatchObject({ ownerId: 'sched-manual', period: 'week', type: 'runs' });

    // One run only, and the one-off Agenda job is gone; the paused job stays paused.
    expect(await runsOf(id)).toHaveLength(1);
    await waitFor(async () => (await h.conn.collection('agendaJobs').countDocuments({ 'data.jobId': id })) === 0, {
      what: 'the one-off Agenda job to be removed',
    });
    const { data: after } = await api.GET('/api/cron/jobs/{id}', { params: { path: { id } } });
    expect(after).toMatchObject({ enabled: false, status: 'paused' });
    expect(after!.lastRunAt).toBe(done.startedAt);
  });

  it('records a failing handler as a failed run and marks the job failed', async () => {
    const api = h.client('sched-fail');
    const { data: job } = await api.POST('/api/cron/jobs', { body: { ...bodies.sendEmail('fails'), enabled: false } });
    // A payload that became invalid behind the API's back (e.g. a type whose schema tightened)
    // must fail the run, not crash the worker.
    await h.scheduler.models.CronJob.updateOne({ _id: job!.id }, { $set: { 'payload.to': 'not-an-address' } });
    const { data: queued } = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    const run = await waitFor(
      async () => {
        const r = await h.scheduler.models.Run.findById(queued!.id).lean();
        return r?.status === 'failed' && r;
      },
      { what: 'the run to fail' },
    );
    expect(run.error).toMatch(/email/i);
    expect(run.finishedAt).not.toBeNull();
  });

  it('deleting a job removes its queued Agenda jobs and no further run happens', async () => {
    const api = h.client('sched-delete');
    const { data: job } = await api.POST('/api/cron/jobs', { body: everySecond('deleted') });
    const id = job!.id;
    await waitFor(async () => (await runsOf(id)).length >= 1, { what: 'a first run' });
    await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id } } });
    expect(await h.conn.collection('agendaJobs').countDocuments({ 'data.jobId': id })).toBe(0);
    const settled = await waitFor(async () => {
      const r = await runsOf(id);
      return r.every((x) => x.status !== 'running') && r;
    });
    expect(await h.conn.collection('agendaJobs').countDocuments({ 'data.jobId': id })).toBe(0);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await runsOf(id)).length).toBe(settled.length);
    expect(await h.conn.collection('agendaJobs').countDocuments({ 'data.jobId': id })).toBe(0);
  });
});
