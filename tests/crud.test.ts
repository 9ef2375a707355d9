import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

/** The Agenda jobs of one cron job: its queued runs only (the dispatcher fires every schedule). */
const agendaJobsOf = (jobId: string) => h.conn.collection('agendaJobs').find({ 'data.jobId': jobId }).toArray();
/** The next fire the dispatcher goes by, as stored. */
const storedNextRun = async (jobId: string) =>
  (await h.scheduler.models.CronJob.findById(jobId, { nextRunAt: 1 }).lean())?.nextRunAt?.toISOString() ?? null;

describe('jobs CRUD through the generated client', () => {
  it('creates a job, schedules it for the dispatcher and reads it back', async () => {
    const api = h.client('crud-owner');
    const body = bodies.sendEmail();
    const created = await api.POST('/api/cron/jobs', { body });
    expect(created.response.status).toBe(201);
    const job = created.data!;
    expect(job).toMatchObject({
      name: body.name,
      type: 'sendEmail',
      cron: '0 8 * * *',
      timezone: 'Europe/Berlin',
      enabled: true,
      ownerId: 'crud-owner',
      status: 'idle',
      lastRunAt: null,
    });
    expect(job.payload).toEqual(body.payload);
    // 08:00 on the Berlin clock, whatever the season.
    const berlin = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' });
    expect(berlin.format(new Date(job.nextRunAt!))).toBe('08:00');

    expect(await storedNextRun(job.id)).toBe(job.nextRunAt);
    expect(await agendaJobsOf(job.id)).toHaveLength(0);

    const got = await api.GET('/api/cron/jobs/{id}', { params: { path: { id: job.id } } });
    expect(got.data).toEqual(job);
  });

  it('defaults timezone to UTC and enabled to true; a job created paused has no schedule', async () => {
    const api = h.client('crud-defaults');
    const { data: job } = await api.POST('/api/cron/jobs', { body: bodies.generateReport() });
    expect(job).toMatchObject({ timezone: 'UTC', enabled: true });
    const { data: paused } = await api.POST('/api/cron/jobs', { body: { ...bodies.generateReport(), enabled: false } });
    expect(paused).toMatchObject({ enabled: false, status: 'paused', nextRunAt: null });
    expect(await storedNextRun(paused!.id)).toBeNull();
  });

  it("lists only the caller's jobs, filters by enabled and type, and pages with a cursor", async () => {
    const api = h.client('crud-lister');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const body = i % 2 ? bodies.generateReport(`r${i}`) : { ...bodies.sendEmail(`e${i}`), enabled: i !== 4 };
      ids.push((await api.POST('/api/cron/jobs', { body })).data!.id);
    }
    await h.client('someone-else').POST('/api/cron/jobs', { body: bodies.sendEmail() });

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const { data } = await api.GET('/api/cron/jobs', {
        params: { query: { limit: 2, ...(cursor ? { cursor } : {}) } },
      });
      seen.push(...data!.items.map((j) => j.id));
      cursor = data!.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    expect(seen).toEqual(ids);
    expect(pages).toBe(3);

    const reports = await api.GET('/api/cron/jobs', { params: { query: { type: 'generateReport' } } });
    expect(reports.data!.items.map((j) => j.name)).toEqual(['r1', 'r3']);
    const paused = await api.GET('/api/cron/jobs', { params: { query: { enabled: 'false' } } });
    expect(paused.data!.items.map((j) => j.name)).toEqual(['e4']);
    const enabledEmails = await api.GET('/api/cron/jobs', {
      params: { query: { enabled: 'true', type: 'sendEmail' } },
    });
    expect(enabledEmails.data!.items.map((j) => j.name)).toEqual(['e0', 'e2']);
  });

  it('replaces a job with PUT and moves its next fire to the new schedule', async () => {
    const api = h.client('crud-put');
    const { data: job } = await api.POST('/api/cron/jobs', { body: bodies.sendEmail() });
    const replaced = await api.PUT('/api/cron/jobs/{id}', {
      params: { path: { id: job!.id } },
      body: { ...bodies.generateReport('replaced'), cron: '30 9 * * *', timezone: 'Asia/Kolkata' },
    });
    expect(replaced.response.status).toBe(200);
    expect(replaced.data).toMatchObject({
      name: 'replaced',
      type: 'generateReport',
      cron: '30 9 * * *',
      timezone: 'Asia/Kolkata',
      payload: { type: 'runs', period: 'week' },
    });
    // 09:30 in Kolkata (UTC+5:30) is 04:00 UTC.
    expect(replaced.data!.nextRunAt).toMatch(/T04:00:00.000Z$/);
    expect(await storedNextRun(job!.id)).toBe(replaced.data!.nextRunAt);
  });

  it('pauses with PATCH {enabled:false} and resumes with {enabled:true}', async () => {
    const api = h.client('crud-patch');
    const { data: job } = await api.POST('/api/cron/jobs', { body: bodies.sendEmail() });
    const id = job!.id;
    const paused = await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: false } });
    expect(paused.data).toMatchObject({
      enabled: false,
      status: 'paused',
      nextRunAt: null,
      cron: job!.cron,
      payload: job!.payload,
    });
    expect(await storedNextRun(id)).toBeNull();

    const resumed = await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: true } });
    expect(resumed.data).toMatchObject({ enabled: true, status: 'idle' });
    expect(resumed.data!.nextRunAt).not.toBeNull();
    expect(await storedNextRun(id)).toBe(resumed.data!.nextRunAt);

    const renamed = await api.PATCH('/api/cron/jobs/{id}', {
      params: { path: { id } },
      body: { name: 'renamed', cron: '15 * * * *' },
    });
    expect(renamed.data).toMatchObject({ name: 'renamed', cron: '15 * * * *', enabled: true });
    expect(new Date(renamed.data!.nextRunAt!).getUTCMinutes()).toBe(15);
    expect(await storedNextRun(id)).toBe(renamed.data!.nextRunAt);
  });

  it('deletes a job: 204, gone from the API and the database', async () => {
    const api = h.client('crud-delete');
    const { data: job } = await api.POST('/api/cron/jobs', { body: bodies.sendEmail() });
    const deleted = await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id: job!.id } } });
    expect(deleted.response.status).toBe(204);
    expect(await h.scheduler.models.CronJob.exists({ _id: job!.id })).toBeNull();
    const got = await api.GET('/api/cron/jobs/{id}', { params: { path: { id: job!.id } } });
    expect(got.response.status).toBe(404);
    const again = await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id: job!.id } } });
    expect(again.response.status).toBe(404);
  });

  it('cancels the queued manual runs of a deleted job and keeps its history', async () => {
    const api = h.client('crud-delete-queued');
    const { data: job } = await api.POST('/api/cron/jobs', { body: bodies.sendEmail() });
    // No worker runs in this file, so the run stays queued.
    const { data: queued } = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    expect(await agendaJobsOf(job!.id)).toHaveLength(1);
    await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id: job!.id } } });
    expect(await agendaJobsOf(job!.id)).toHaveLength(0);
    const run = await h.scheduler.models.Run.findById(queued!.id).lean();
    expect(run).toMatchObject({ status: 'cancelled', error: expect.stringMatching(/deleted/) });
  });

  it('answers 409 for a duplicate name of the same owner, but allows it for another owner', async () => {
    const body = bodies.sendEmail('same-name');
    expect((await h.client('dup-a').POST('/api/cron/jobs', { body })).response.status).toBe(201);
    const dup = await h.client('dup-a').POST('/api/cron/jobs', { body });
    expect(dup.response.status).toBe(409);
    expect(dup.error).toMatchObject({ status: 409, errors: [{ in: 'body', path: 'name' }] });
    expect((await h.client('dup-b').POST('/api/cron/jobs', { body })).response.status).toBe(201);

    // Renaming onto a taken name is the same conflict.
    const { data: other } = await h.client('dup-a').POST('/api/cron/jobs', { body: bodies.sendEmail('other-name') });
    const rename = await h
      .client('dup-a')
      .PATCH('/api/cron/jobs/{id}', { params: { path: { id: other!.id } }, body: { name: 'same-name' } });
    expect(rename.response.status).toBe(409);
  });

  it('lets an owner pause and rename a job whose cron predates stricter rules, but not set a refused cron', async () => {
    const strict = await startHarness({ env: { CRON_MIN_INTERVAL_SECONDS: '3600' } });
    try {
      // Created when every 5 minutes was allowed.
      const legacy = await strict.scheduler.models.CronJob.create({
        ...bodies.sendEmail('legacy'),
        cron: '*/5 * * * *',
        ownerId: 'legacy-owner',
      });
      const api = strict.client('legacy-owner');
      const id = String(legacy._id);
      expect(
        (await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: false } })).data,
      ).toMatchObject({ enabled: false });
      expect(
        (await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { name: 'legacy-renamed' } })).data,
      ).toMatchObject({ name: 'legacy-renamed' });
      const refused = await api.PATCH('/api/cron/jobs/{id}', {
        params: { path: { id } },
        body: { cron: '*/10 * * * *' },
      });
      expect(refused.response.status).toBe(400);
      expect(refused.error).toMatchObject({ errors: [{ in: 'body', path: 'cron' }] });
    } finally {
      await strict.stop();
    }
  });

  it('writes an audit entry for create, update, delete and run-now', async () => {
    const api = h.client('auditor');
    const { data: job } = await api.POST('/api/cron/jobs', { body: bodies.sendEmail() });
    const id = job!.id;
    await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: false } });
    await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id } } });
    await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id } } });
    const entries = await h.scheduler.models.AuditLog.find({ actorId: 'auditor' }).sort({ at: 1 }).lean();
    expect(entries.map((e) => e.action)).toEqual(['create', 'update', 'run-now', 'delete']);
    expect(entries.every((e) => String(e.jobId) === id && e.ownerId === 'auditor')).toBe(true);
    expect(entries[1]!.changes).toMatchObject({ enabled: false });
  });
});
