import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CronJobInput, Problem } from '../generated/client.js';
import { bodies, type Harness, startHarness, waitFor } from './helpers/harness.js';

// sendEmail may only write to the allowed domains or to the author's own (verified) address:
// checked when the payload is set, and again by the worker before it sends.

const user = () => `mail-${randomUUID().slice(0, 8)}`;
const to = (address: string): CronJobInput => {
  const b = bodies.sendEmail();
  return { ...b, enabled: false, payload: { ...b.payload, to: address } };
};

function expectRefused(res: { response: Response; error?: unknown }) {
  expect(res.response.status).toBe(403);
  const problem = res.error as Problem;
  expect(problem).toMatchObject({ type: '/problems/payload-not-allowed', title: 'Payload not allowed' });
  expect(problem.errors).toEqual([
    { in: 'body', path: 'payload.to', message: expect.stringMatching(/^recipient not allowed/) },
  ]);
  return problem;
}

describe('with EMAIL_ALLOWED_DOMAINS=corp.example and the own address allowed (the default)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ worker: true, env: { EMAIL_ALLOWED_DOMAINS: 'corp.example' } });
  });
  afterAll(() => h.stop());

  const as = (email?: string, verified?: boolean) =>
    h.client(user(), {
      claims: { ...(email ? { email } : {}), ...(verified === undefined ? {} : { email_verified: verified }) },
    });

  it.each([
    ['an address at an allowed domain, without an email claim', undefined, 'anyone@corp.example'],
    ['an allowed domain in another case', undefined, 'Anyone@CORP.example'],
    ["the caller's own address from the token", 'alice@home.test', 'alice@home.test'],
    ['the own address in another case', 'Alice@Home.test', 'alice@home.TEST'],
  ])('accepts %s', async (_label, email, address) => {
    const res = await as(email).POST('/api/cron/jobs', { body: to(address) });
    expect(res.response.status).toBe(201);
  });

  it.each([
    ['a stranger at another domain', 'alice@home.test', 'bob@elsewhere.test'],
    ['a subdomain of an allowed domain (exact match only)', undefined, 'x@mail.corp.example'],
    ["someone else at the caller's own domain", 'alice@home.test', 'bob@home.test'],
    ['the claimed address when the token says it is unverified', 'alice@home.test', 'alice@home.test'],
  ])('refuses %s with 403 naming payload.to, and stores nothing', async (label, email, address) => {
    const sub = user();
    const api = h.client(sub, {
      claims: { ...(email ? { email } : {}), ...(label.includes('unverified') ? { email_verified: false } : {}) },
    });
    const problem = expectRefused(await api.POST('/api/cron/jobs', { body: to(address) }));
    expect(problem.detail).toMatch(/corp\.example/);
    expect(await h.scheduler.models.CronJob.countDocuments({ ownerId: sub })).toBe(0);
  });

  it('PATCH and PUT of the payload are checked too; the job stays unchanged', async () => {
    const sub = user();
    const api = h.client(sub, { claims: { email: 'carol@home.test' } });
    const { data: job } = await api.POST('/api/cron/jobs', { body: to('carol@home.test') });
    const path = { id: job!.id };
    const stranger = { ...to('mallory@evil.test').payload } as Record<string, unknown>;
    expectRefused(await api.PATCH('/api/cron/jobs/{id}', { params: { path }, body: { payload: stranger } }));
    expectRefused(await api.PUT('/api/cron/jobs/{id}', { params: { path }, body: to('mallory@evil.test') }));
    expect((await api.GET('/api/cron/jobs/{id}', { params: { path } })).data).toEqual(job);
    // Another field of the job can still be changed (rules are checked when the payload is set).
    expect(
      (await h.client(sub).PATCH('/api/cron/jobs/{id}', { params: { path }, body: { name: 'renamed' } })).response
        .status,
    ).toBe(200);
  });

  it('the worker checks again before sending: a recipient that is no longer allowed fails the run and nothing is sent', async () => {
    const sub = user();
    const api = h.client(sub, { claims: { email: 'dave@home.test' } });
    const { data: job } = await api.POST('/api/cron/jobs', { body: to('dave@home.test') });
    const stored = await h.scheduler.models.CronJob.findById(job!.id).lean();
    expect(stored!.payloadAuthorEmail).toBe('dave@home.test');
    // What a configuration change (or a write that bypassed the API) leaves behind.
    await h.scheduler.models.CronJob.updateOne({ _id: job!.id }, { $set: { 'payload.to': 'eve@elsewhere.test' } });
    const { data: queued } = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    const run = await waitFor(
      async () => {
        const r = await h.scheduler.models.Run.findById(queued!.id).lean();
        return r && ['succeeded', 'failed'].includes(r.status) && r;
      },
      { what: 'the run to finish' },
    );
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/not sent: recipient not allowed/);
    const files = await readdir(h.config.OUTBOX_DIR);
    expect(files.filter((f) => f.includes(String(run._id)))).toEqual([]);
  });

  it('the same run goes through for an allowed recipient (control)', async () => {
    const api = as();
    const { data: job } = await api.POST('/api/cron/jobs', { body: to('ops@corp.example') });
    const { data: queued } = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    const run = await waitFor(
      async () => {
        const r = await h.scheduler.models.Run.findById(queued!.id).lean();
        return r && ['succeeded', 'failed'].includes(r.status) && r;
      },
      { what: 'the run to finish' },
    );
    expect(run.status).toBe('succeeded');
    expect((await readdir(h.config.OUTBOX_DIR)).filter((f) => f.includes(String(run._id)))).toHaveLength(1);
  });
});

describe('with no allowed domains and EMAIL_ALLOW_OWN_ADDRESS=false', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { EMAIL_ALLOWED_DOMAINS: '', EMAIL_ALLOW_OWN_ADDRESS: 'false' } });
  });
  afterAll(() => h.stop());

  it('even the own address is refused, and the message says email is off', async () => {
    const problem = expectRefused(
      await h
        .client(user(), { claims: { email: 'alice@home.test' } })
        .POST('/api/cron/jobs', { body: to('alice@home.test') }),
    );
    expect(problem.errors![0]!.message).toMatch(/nobody/);
  });
});
