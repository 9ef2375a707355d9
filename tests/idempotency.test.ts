import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CronJob, Problem, Run } from '../generated/client.js';
import { sweepExpired } from '../src/lib/expiry.js';
import { IDEMPOTENCY_COLLECTION, IdempotencyStore, requestFingerprint } from '../src/lib/idempotency.js';
import { assertMatchesSpec } from './helpers/contract.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) on POST /jobs and run-now.

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const user = () => `idem-${randomUUID().slice(0, 8)}`;
const keys = () => h.conn.collection(IDEMPOTENCY_COLLECTION);

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: unknown;
}

async function send(
  sub: string,
  method: string,
  url: string,
  spec: string,
  o: { body?: unknown; key?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { Authorization: `Bearer ${await h.token(sub)}` };
  if (o.key !== undefined) headers['Idempotency-Key'] = o.key;
  if (o.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(h.baseUrl + url, {
    method,
    headers,
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
  const text = await response.text();
  const body = text ? JSON.parse(text) : undefined;
  assertMatchesSpec(spec, method, response.status, response.headers.get('Content-Type'), body);
  return { status: response.status, headers: response.headers, text, body };
}

const create = (sub: string, body: unknown, key?: string) =>
  send(sub, 'POST', '/api/cron/jobs', '/api/cron/jobs', { body, ...(key !== undefined ? { key } : {}) });
const runNow = (sub: string, id: string, key?: string) =>
  send(sub, 'POST', `/api/cron/jobs/${id}/run-now`, '/api/cron/jobs/{id}/run-now', key !== undefined ? { key } : {});

describe('POST /jobs with an Idempotency-Key', () => {
  it('a repeat with the same key and body replays the first response (status, body, ETag) and creates nothing more', async () => {
    const sub = user();
    const body = bodies.sendEmail();
    const key = randomUUID();
    const first = await create(sub, body, key);
    expect(first.status).toBe(201);
    expect(first.headers.get('Idempotent-Replayed')).toBeNull();
    const again = await create(sub, body, key);
    expect(again.status).toBe(201);
    expect(again.text).toBe(first.text);
    expect(again.headers.get('ETag')).toBe(first.headers.get('ETag'));
    expect(again.headers.get('Content-Type')).toBe(first.headers.get('Content-Type'));
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect(await h.scheduler.models.CronJob.countDocuments({ ownerId: sub })).toBe(1);
  });

  it('accepts the key as a structured-field string ("...") as the draft writes it, the same key as bare', async () => {
    const sub = user();
    const body = bodies.generateReport();
    const key = randomUUID();
    const first = await create(sub, body, `"${key}"`);
    const again = await create(sub, body, key);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect((again.body as CronJob).id).toBe((first.body as CronJob).id);
  });

  it('the same key with another body is 422, and nothing is created for it', async () => {
    const sub = user();
    const key = randomUUID();
    await create(sub, bodies.sendEmail('first'), key);
    const other = await create(sub, bodies.sendEmail('second'), key);
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({
      type: '/problems/idempotency-key-reused',
      errors: [{ in: 'header', path: 'Idempotency-Key' }],
    });
    expect((await h.scheduler.models.CronJob.find({ ownerId: sub }).lean()).map((j) => j.name)).toEqual(['first']);
  });

  it('keys are per user: another user with the same key gets their own job', async () => {
    const key = randomUUID();
    const body = bodies.generateReport('shared-name');
    const a = await create(user(), body, key);
    const b = await create(user(), body, key);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.headers.get('Idempotent-Replayed')).toBeNull();
    expect((b.body as CronJob).id).not.toBe((a.body as CronJob).id);
  });

  it('a key still in flight is 409 and changes nothing; once the first request has let go of it, the repeat runs', async () => {
    const sub = user();
    const body = bodies.generateReport();
    const key = randomUUID();
    // The first request is "in progress": its claim is made the way the middleware makes it.
    const store = new IdempotencyStore(h.conn, h.config);
    const taken = await store.claim(sub, key, requestFingerprint('POST', '/api/cron/jobs', JSON.stringify(body)));
    expect(taken.kind).toBe('new');
    const busy = await create(sub, body, key);
    expect(busy.status).toBe(409);
    expect(busy.body).toMatchObject({
      type: '/problems/idempotency-key-in-use',
      errors: [{ in: 'header', path: 'Idempotency-Key' }],
    });
    expect(await h.scheduler.models.CronJob.countDocuments({ ownerId: sub })).toBe(0);
    await store.release((taken as { id: string }).id);
    expect((await create(sub, body, key)).status).toBe(201);
  });

  it('a refusal (4xx) is kept and replayed too; a conflict (409) is not, so a retry can succeed', async () => {
    const sub = user();
    const key = randomUUID();
    const bad = { ...bodies.sendEmail(), cron: 'not a cron' };
    expect((await create(sub, bad, key)).status).toBe(400);
    const replayed = await create(sub, bad, key);
    expect(replayed.status).toBe(400);
    expect(replayed.headers.get('Idempotent-Replayed')).toBe('true');

    const name = `taken-${randomUUID().slice(0, 8)}`;
    await create(sub, bodies.generateReport(name));
    const conflictKey = randomUUID();
    expect((await create(sub, bodies.generateReport(name), conflictKey)).status).toBe(409);
    expect(await keys().countDocuments({ key: conflictKey })).toBe(0);
    await h.scheduler.models.CronJob.deleteOne({ ownerId: sub, name });
    expect((await create(sub, bodies.generateReport(name), conflictKey)).status).toBe(201);
  });

  it('without the header nothing changes: the same body twice is a duplicate-name 409', async () => {
    const sub = user();
    const body = bodies.generateReport();
    expect((await create(sub, body)).status).toBe(201);
    expect((await create(sub, body)).status).toBe(409);
  });

  it.each([
    ['empty', ''],
    ['too long', 'k'.repeat(256)],
    ['with a space', 'a b'],
    ['not ASCII', 'cl\u00e9'],
  ])('a key that is %s is 400 in the header', async (_label, key) => {
    const answer = await create(user(), bodies.generateReport(), key);
    expect(answer.status).toBe(400);
    expect((answer.body as Problem).errors).toContainEqual(
      expect.objectContaining({ in: 'header', path: expect.stringMatching(/^idempotency-key$/i) }),
    );
  });
});

describe('run-now with an Idempotency-Key', () => {
  it('a retry returns the first run and queues no second one; another key queues another', async () => {
    const sub = user();
    const { data: job } = await h.client(sub).POST('/api/cron/jobs', { body: bodies.generateReport() });
    const key = randomUUID();
    const first = await runNow(sub, job!.id, key);
    expect(first.status).toBe(202);
    const again = await runNow(sub, job!.id, key);
    expect(again.status).toBe(202);
    expect((again.body as Run).id).toBe((first.body as Run).id);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect(await h.scheduler.models.Run.countDocuments({ jobId: job!.id })).toBe(1);
    expect((await runNow(sub, job!.id, randomUUID())).status).toBe(202);
    expect(await h.scheduler.models.Run.countDocuments({ jobId: job!.id })).toBe(2);
  });

  it('the same key on another job is 422 (the key names one operation)', async () => {
    const sub = user();
    const api = h.client(sub);
    const a = (await api.POST('/api/cron/jobs', { body: bodies.generateReport() })).data!;
    const b = (await api.POST('/api/cron/jobs', { body: bodies.generateReport() })).data!;
    const key = randomUUID();
    expect((await runNow(sub, a.id, key)).status).toBe(202);
    expect((await runNow(sub, b.id, key)).status).toBe(422);
    expect(await h.scheduler.models.Run.countDocuments({ jobId: b.id })).toBe(0);
  });
});

describe('keeping keys', () => {
  it('keys are kept at least 24 h: expiresAt is IDEMPOTENCY_KEY_TTL_HOURS after creation', async () => {
    const sub = user();
    const key = randomUUID();
    await create(sub, bodies.generateReport(), key);
    const record = await keys().findOne({ key, ownerId: sub });
    expect(record!.expiresAt.getTime() - record!.createdAt.getTime()).toBe(24 * 3_600_000);
    expect(h.config.IDEMPOTENCY_KEY_TTL_HOURS).toBe(24);
  });

  it('an expired key (not yet swept) is free again, and the sweeper deletes expired keys', async () => {
    const sub = user();
    const key = randomUUID();
    const first = await create(sub, bodies.generateReport(), key);
    await keys().updateOne({ key, ownerId: sub }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    const other = await create(sub, bodies.generateReport(), key);
    expect(other.status).toBe(201);
    expect((other.body as CronJob).id).not.toBe((first.body as CronJob).id);

    await keys().updateOne({ key, ownerId: sub }, { $set: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await sweepExpired([{ collection: keys(), field: 'expiresAt' }])).toBeGreaterThanOrEqual(1);
    expect(await keys().countDocuments({ key, ownerId: sub })).toBe(0);
  });

  it('a key left in flight by a request that died is taken over once its lease is over', async () => {
    const sub = user();
    const body = bodies.generateReport();
    const key = randomUUID();
    const store = new IdempotencyStore(h.conn, h.config);
    await store.claim(sub, key, requestFingerprint('POST', '/api/cron/jobs', JSON.stringify(body)));
    await keys().updateOne({ key, ownerId: sub }, { $set: { lockedUntil: new Date(Date.now() - 1000) } });
    const answer = await create(sub, body, key);
    expect(answer.status).toBe(201);
  });
});
