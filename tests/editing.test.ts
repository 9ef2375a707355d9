import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextFire } from '../src/scheduler/cron.js';
import { type Harness, startHarness, waitFor } from './helpers/harness.js';

/** A mail server that takes `delayMs` to accept each message, so a sendEmail run lasts that long. */
async function slowSmtp(delayMs: number) {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, done) {
      stream.resume();
      stream.on('end', () => setTimeout(done, delayMs));
    },
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `smtp://127.0.0.1:${(server.server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

let smtp: Awaited<ReturnType<typeof slowSmtp>>;
let h: Harness;
beforeAll(async () => {
  smtp = await slowSmtp(1500);
  h = await startHarness({ worker: true, env: { SMTP_URL: smtp.url } });
});
afterAll(async () => {
  await h.stop();
  await smtp.close();
});

const runsOf = (id: string) => h.scheduler.models.Run.find({ jobId: id }).sort({ scheduledFor: 1 }).lean();
const nextRunOf = async (id: string) =>
  (await h.scheduler.models.CronJob.findById(id, { nextRunAt: 1 }).lean())?.nextRunAt ?? null;
const mail = { to: 'e@example.com', subject: 'slow', template: 'plain' as const, params: { body: 'x' } };

/** Creates a sendEmail job every 2 s and waits until one of its runs is in progress. */
async function jobMidRun(owner: string) {
  const api = h.client(owner);
  const { data: job } = await api.POST('/api/cron/jobs', {
    body: { name: owner, type: 'sendEmail', cron: '*/2 * * * * *', timezone: 'UTC', payload: mail },
  });
  await waitFor(async () => (await runsOf(job!.id)).some((r) => r.status === 'running'), { what: 'a run in progress' });
  return { api, id: job!.id };
}

describe('editing a job while it runs', () => {
  it('a new cron takes effect at once: no run at an old or impossible slot, nothing left locked', async () => {
    const { api, id } = await jobMidRun('edit-cron');
    const edited = await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { cron: '0 0 1 1 *' } });
    expect(edited.response.status).toBe(200);
    // The run in progress finishes normally.
    await waitFor(async () => (await runsOf(id)).every((r) => r.status !== 'running'), { what: 'the run to finish' });

    // The schedule is the new one: the dispatcher fires it next New Year.
    expect(await nextRunOf(id)).toEqual(nextFire('0 0 1 1 *', 'UTC'));

    // Over the next old-cron fires (every 2 s), nothing runs: no slot of the old cron, and never
    // this year's 1 January slot, which a stale fire under the new cron would have claimed.
    const settled = (await runsOf(id)).length;
    await new Promise((r) => setTimeout(r, 4500));
    const runs = await runsOf(id);
    expect(runs).toHaveLength(settled);
    expect(
      runs.every((r) => r.scheduledFor.getUTCSeconds() % 2 === 0 && r.scheduledFor.getTime() > Date.now() - 60_000),
    ).toBe(true);
    expect((await api.GET('/api/cron/jobs/{id}', { params: { path: { id } } })).data).toMatchObject({
      status: 'idle',
      cron: '0 0 1 1 *',
    });
  });

  it('a new type takes effect at once: the old schedule is not left locked, the new type fires', async () => {
    const { api, id } = await jobMidRun('edit-type');
    const edited = await api.PATCH('/api/cron/jobs/{id}', {
      params: { path: { id } },
      body: { type: 'generateReport', payload: { type: 'runs', period: 'day' } },
    });
    expect(edited.response.status).toBe(200);
    // Within seconds, not after a 10-minute lock expiry, the job fires as generateReport.
    const report = await waitFor(
      async () => (await runsOf(id)).find((r) => r.type === 'generateReport' && r.status === 'succeeded'),
      {
        what: 'a generateReport run',
      },
    );
    expect(report.trigger).toBe('schedule');
    await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: false } });
    await waitFor(async () => (await runsOf(id)).every((r) => r.status !== 'running'), { what: 'runs to settle' });
    expect(await nextRunOf(id)).toBeNull();
    expect(await h.conn.collection('agendaJobs').countDocuments({ 'data.jobId': id, lockedAt: { $ne: null } })).toBe(0);
  });

  it('PUT and PATCH of other fields mid-run neither start a second run of that slot nor lose the next slot', async () => {
    const { api, id } = await jobMidRun('edit-mid-run');
    const inProgress = (await runsOf(id)).find((r) => r.status === 'running')!;
    const put = await api.PUT('/api/cron/jobs/{id}', {
      params: { path: { id } },
      body: {
        name: 'edit-mid-run',
        type: 'sendEmail',
        cron: '*/2 * * * * *',
        timezone: 'UTC',
        payload: { ...mail, subject: 'replaced' },
      },
    });
    expect(put.response.status).toBe(200);
    const patch = await api.PATCH('/api/cron/jobs/{id}', {
      params: { path: { id } },
      body: { payload: { ...mail, subject: 'patched' }, overlap: 'forbid' },
    });
    expect(patch.response.status).toBe(200);
    // The slots after the edit each get their record, and runs go on under the edited payload.
    const runs = await waitFor(
      async () => {
        const all = await runsOf(id);
        return (
          all.filter((r) => r.scheduledFor > inProgress.scheduledFor && r.status === 'succeeded').length >= 2 && all
        );
      },
      { what: 'two runs after the edit' },
    );
    const ofSlot = runs.filter((r) => r.scheduledFor.getTime() === inProgress.scheduledFor.getTime());
    expect(ofSlot.map((r) => r.status)).toEqual(['succeeded']);
    const job = await h.scheduler.models.CronJob.findById(id).lean();
    const after = runs.filter((r) => r.scheduledFor > inProgress.scheduledFor && r.scheduledFor <= job!.lastSlotAt!);
    const expected = (job!.lastSlotAt!.getTime() - inProgress.scheduledFor.getTime()) / 2000;
    expect(after.filter((r) => r.trigger === 'schedule')).toHaveLength(expected);
    await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id } } });
  });

  it('renaming while running keeps the schedule and the run', async () => {
    const { api, id } = await jobMidRun('edit-name');
    const before = (await h.scheduler.models.CronJob.findById(id, { slotsFrom: 1 }).lean())!.slotsFrom;
    await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { name: 'renamed-mid-run' } });
    // A change that does not touch the schedule leaves it alone: slots are still counted from the same instant.
    expect((await h.scheduler.models.CronJob.findById(id, { slotsFrom: 1 }).lean())!.slotsFrom).toEqual(before);
    const finished = await waitFor(async () => (await runsOf(id)).find((r) => r.status === 'succeeded'), {
      what: 'the run to succeed',
    });
    expect(finished.error).toBeNull();
    await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id } } });
  });
});
