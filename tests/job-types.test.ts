import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import mongoose from 'mongoose';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CronJobInput } from '../generated/client.js';
import { type Harness, startHarness, waitFor } from './helpers/harness.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** A real SMTP server on loopback that keeps what it receives. */
async function startSmtp() {
  const received: { from: string; to: string[]; raw: string }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, done) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        done();
      });
    },
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

let smtp: Awaited<ReturnType<typeof startSmtp>>;
let h: Harness;
beforeAll(async () => {
  smtp = await startSmtp();
  h = await startHarness({ worker: true, env: { SMTP_URL: smtp.url, SESSIONS_COLLECTION: 'user_sessions' } });
});
afterAll(async () => {
  await h.stop();
  await smtp.close();
});

/** Creates a paused job, runs it once now, and returns the finished run. */
async function runOnce(owner: string, body: CronJobInput, admin = false) {
  const api = h.client(owner, { admin });
  const created = await api.POST('/api/cron/jobs', { body: { ...body, enabled: false } });
  expect(created.response.status).toBe(201);
  const { data: queued } = await api.POST('/api/cron/jobs/{id}/run-now', {
    params: { path: { id: created.data!.id } },
  });
  return waitFor(
    async () => {
      const run = await h.scheduler.models.Run.findById(queued!.id).lean();
      return run && ['succeeded', 'failed'].includes(run.status) && run;
    },
    { what: `the ${body.type} run to finish` },
  );
}

describe('job types do real work', () => {
  it('sendEmail renders its template and delivers it to an SMTP server', async () => {
    const run = await runOnce('mailer', {
      name: 'reminder',
      type: 'sendEmail',
      cron: '0 9 * * *',
      timezone: 'UTC',
      payload: {
        to: 'bob@example.com',
        subject: 'Dentist',
        template: 'reminder',
        params: { title: 'Dentist <10:00>', note: 'Bring the card' },
      },
    });
    expect(run.status).toBe('succeeded');
    expect(run.result).toMatchObject({ via: 'smtp', accepted: ['bob@example.com'] });
    const mail = await waitFor(async () => smtp.received.find((m) => m.raw.includes(`run-${run._id}@cron-jobs`)), {
      what: 'the mail at the SMTP server',
    });
    expect(mail.to).toEqual(['bob@example.com']);
    expect(mail.raw).toMatch(/^Subject: Dentist/m);
    expect(mail.raw).toContain('Reminder: Dentist <10:00>');
    // The HTML part escapes the params.
    expect(mail.raw).toContain('Dentist &lt;10:00&gt;');
    expect(mail.raw).toContain('Bring the card');
  });

  it('purgeSessions deletes exactly the sessions inactive for more than N days', async () => {
    const sessions = h.conn.collection('user_sessions');
    const now = Date.now();
    await sessions.insertMany([
      { name: 'fresh', lastActiveAt: new Date(now - 1 * DAY_MS) },
      { name: 'edge-kept', lastActiveAt: new Date(now - 29 * DAY_MS) },
      { name: 'stale', lastActiveAt: new Date(now - 31 * DAY_MS) },
      { name: 'ancient', lastActiveAt: new Date(now - 400 * DAY_MS) },
    ]);
    const run = await runOnce(
      'admin-1',
      { name: 'purge', type: 'purgeSessions', cron: '0 3 * * *', timezone: 'UTC', payload: { inactiveDays: 30 } },
      true,
    );
    expect(run.status).toBe('succeeded');
    expect(run.result).toMatchObject({ deleted: 2 });
    const left = await sessions.find({}, { projection: { name: 1 } }).toArray();
    expect(left.map((s) => s.name).sort()).toEqual(['edge-kept', 'fresh']);
  });

  it('cleanupOldAuditLogs deletes only audit entries older than N days', async () => {
    const audit = h.scheduler.models.AuditLog;
    const jobId = '6650f1c2a8b4e9d2c4a1b2c3';
    await audit.create([
      { actorId: 'x', action: 'create', jobId, ownerId: 'x', at: new Date(Date.now() - 100 * DAY_MS) },
      { actorId: 'x', action: 'delete', jobId, ownerId: 'x', at: new Date(Date.now() - 91 * DAY_MS) },
    ]);
    const recent = await audit.countDocuments({ at: mongoose.trusted({ $gte: new Date(Date.now() - 90 * DAY_MS) }) });
    const run = await runOnce(
      'admin-2',
      {
        name: 'audit-cleanup',
        type: 'cleanupOldAuditLogs',
        cron: '0 4 * * 0',
        timezone: 'UTC',
        payload: { olderThanDays: 90 },
      },
      true,
    );
    expect(run.status).toBe('succeeded');
    expect(run.result).toMatchObject({ deleted: 2 });
    // Everything recent stays, including the entries this very test's API calls wrote.
    expect(await audit.countDocuments({ at: mongoose.trusted({ $lt: new Date(Date.now() - 90 * DAY_MS) }) })).toBe(0);
    expect(await audit.countDocuments({})).toBeGreaterThanOrEqual(recent + 2);
  });

  it("generateReport counts the owner's runs of the period by status and stores the report", async () => {
    const owner = 'reporter';
    await runOnce(owner, {
      name: 'r-source',
      type: 'generateReport',
      cron: '0 1 * * *',
      timezone: 'UTC',
      payload: { type: 'runs', period: 'day' },
    });
    const run = await runOnce(owner, {
      name: 'r-main',
      type: 'generateReport',
      cron: '0 2 * * *',
      timezone: 'UTC',
      payload: { type: 'runs', period: 'day' },
    });
    expect(run.status).toBe('succeeded');
    // The window ends at the run's own slot (exclusive): the earlier run counts, the reporting run does not.
    expect(run.result).toEqual({
      reportId: expect.any(String),
      total: 1,
      byStatus: { succeeded: 1 },
      averageDurationMs: expect.any(Number),
    });
    const report = await h.scheduler.models.Report.findOne({ runId: run._id }).lean();
    expect(report).toMatchObject({ ownerId: owner, type: 'runs', period: 'day', stats: { total: 1 } });
    expect(report!.to.getTime() - report!.from.getTime()).toBe(DAY_MS);
  });
});

describe('sendEmail without SMTP_URL', () => {
  it('writes the message as an .eml file into the outbox', async () => {
    const local = await startHarness({ worker: true });
    try {
      const api = local.client('outbox-user');
      const { data: job } = await api.POST('/api/cron/jobs', {
        body: {
          name: 'to-outbox',
          type: 'sendEmail',
          cron: '0 9 * * *',
          timezone: 'UTC',
          enabled: false,
          payload: { to: 'c@example.com', subject: 'Kept', template: 'plain', params: { body: 'Hello outbox' } },
        },
      });
      const { data: queued } = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
      const run = await waitFor(
        async () => {
          const r = await local.scheduler.models.Run.findById(queued!.id).lean();
          return r?.status === 'succeeded' && r;
        },
        { what: 'the outbox run' },
      );
      const file = (run.result as { file: string }).file;
      expect(file.startsWith(local.config.OUTBOX_DIR)).toBe(true);
      const eml = await readFile(file, 'utf8');
      expect(eml).toMatch(/^To: c@example.com/m);
      expect(eml).toMatch(/^Subject: Kept/m);
      expect(eml).toContain('Hello outbox');
    } finally {
      await local.stop();
    }
  });
});
