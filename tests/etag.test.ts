import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CronJob, Problem } from '../generated/client.js';
import { ifMatchSatisfied } from '../src/lib/etag.js';
import { assertMatchesSpec } from './helpers/contract.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// ETag on job responses, optional If-Match on PUT, PATCH and DELETE, 412 on a mismatch.

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const user = () => `etag-${randomUUID().slice(0, 8)}`;

async function send(
  sub: string,
  method: string,
  url: string,
  spec: string,
  o: { body?: unknown; ifMatch?: string } = {},
) {
  const headers: Record<string, string> = { Authorization: `Bearer ${await h.token(sub)}` };
  if (o.ifMatch !== undefined) headers['If-Match'] = o.ifMatch;
  if (o.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(h.baseUrl + url, {
    method,
    headers,
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
  const text = await response.text();
  const body = text ? JSON.parse(text) : undefined;
  assertMatchesSpec(spec, method, response.status, response.headers.get('Content-Type'), body);
  return { status: response.status, etag: response.headers.get('ETag'), body };
}

const one = '/api/cron/jobs/{id}';
async function newJob(sub: string) {
  const created = await send(sub, 'POST', '/api/cron/jobs', '/api/cron/jobs', { body: bodies.sendEmail() });
  return { job: created.body as CronJob, etag: created.etag!, url: `/api/cron/jobs/${(created.body as CronJob).id}` };
}

function expectPreconditionFailed(answer: { status: number; body: unknown }) {
  expect(answer.status).toBe(412);
  expect(answer.body).toMatchObject({
    type: '/problems/precondition-failed',
    errors: [{ in: 'header', path: 'If-Match' }],
  });
}

describe('ETag', () => {
  it('POST, GET, PUT and PATCH send a strong ETag; GET repeats it until the job is edited', async () => {
    const sub = user();
    const { etag, url } = await newJob(sub);
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect((await send(sub, 'GET', url, one)).etag).toBe(etag);
    const patched = await send(sub, 'PATCH', url, one, { body: { name: 'renamed' } });
    expect(patched.etag).toMatch(/^"/);
    expect(patched.etag).not.toBe(etag);
    expect((await send(sub, 'GET', url, one)).etag).toBe(patched.etag);
    const replaced = await send(sub, 'PUT', url, one, { body: bodies.generateReport() });
    expect(replaced.etag).not.toBe(patched.etag);
    expect((await send(sub, 'GET', url, one)).etag).toBe(replaced.etag);
  });

  it('a run does not change it: bookkeeping by the worker leaves the writable state alone', async () => {
    const sub = user();
    const { job, etag, url } = await newJob(sub);
    // What the runner writes after a run (it does not touch updatedAt).
    await h.scheduler.models.CronJob.updateOne(
      { _id: job.id },
      { $set: { lastRunAt: new Date(), status: 'failed', consecutiveFailures: 1 } },
      { timestamps: false },
    );
    const after = await send(sub, 'GET', url, one);
    expect((after.body as CronJob).status).toBe('failed');
    expect(after.etag).toBe(etag);
  });
});

describe('If-Match', () => {
  it.each(['PUT', 'PATCH'] as const)(
    '%s with the current ETag succeeds; with the old one afterwards it is 412 and changes nothing',
    async (method) => {
      const sub = user();
      const { etag, url } = await newJob(sub);
      const body = method === 'PUT' ? { ...bodies.sendEmail(), name: 'first edit' } : { name: 'first edit' };
      const ok = await send(sub, method, url, one, { body, ifMatch: etag });
      expect(ok.status).toBe(200);
      const before = await send(sub, 'GET', url, one);
      const stale = await send(sub, method, url, one, {
        body: method === 'PUT' ? { ...bodies.sendEmail(), name: 'lost update' } : { name: 'lost update' },
        ifMatch: etag,
      });
      expectPreconditionFailed(stale);
      expect(await send(sub, 'GET', url, one)).toEqual(before);
    },
  );

  it('DELETE with a stale ETag is 412 and the job stays; with the current one it goes', async () => {
    const sub = user();
    const { etag, url } = await newJob(sub);
    const { etag: current } = await send(sub, 'PATCH', url, one, { body: { enabled: false } });
    expectPreconditionFailed(await send(sub, 'DELETE', url, one, { ifMatch: etag }));
    expect((await send(sub, 'GET', url, one)).status).toBe(200);
    expect((await send(sub, 'DELETE', url, one, { ifMatch: current! })).status).toBe(204);
    expect((await send(sub, 'GET', url, one)).status).toBe(404);
  });

  it('"*" matches any existing job, a list matches when one member does, a weak tag never matches', async () => {
    const sub = user();
    const { etag, url } = await newJob(sub);
    const afterStar = await send(sub, 'PATCH', url, one, { body: { name: 'star' }, ifMatch: '*' });
    expect(afterStar.status).toBe(200);
    expect(
      (await send(sub, 'PATCH', url, one, { body: { name: 'listed' }, ifMatch: `${etag}, ${afterStar.etag}` })).status,
    ).toBe(200);
    const { etag: now } = await send(sub, 'GET', url, one);
    expectPreconditionFailed(await send(sub, 'PATCH', url, one, { body: { name: 'weak' }, ifMatch: `W/${now}` }));
    expectPreconditionFailed(
      await send(sub, 'PATCH', url, one, { body: { name: 'unquoted' }, ifMatch: now!.replace(/"/g, '') }),
    );
  });

  it("without If-Match the writes behave as before; another owner's job is 404 whatever If-Match says", async () => {
    const sub = user();
    const { url } = await newJob(sub);
    expect((await send(sub, 'PATCH', url, one, { body: { name: 'no precondition' } })).status).toBe(200);
    const stranger = await send(user(), 'PATCH', url, one, { body: { name: 'x' }, ifMatch: '*' });
    expect(stranger.status).toBe(404);
    expect((stranger.body as Problem).type).toBe('/problems/not-found');
  });
});

describe('ifMatchSatisfied', () => {
  it.each([
    ['"abc"', '"abc"', true],
    ['*', '"abc"', true],
    [' * ', '"abc"', true],
    ['"x", "abc"', '"abc"', true],
    ['"x","abc"', '"abc"', true],
    ['W/"abc"', '"abc"', false],
    ['abc', '"abc"', false],
    ['"ab"', '"abc"', false],
    ['', '"abc"', false],
  ] as const)('If-Match %j against %s: %s', (header, etag, expected) => {
    expect(ifMatchSatisfied(header, etag)).toBe(expected);
  });
});
