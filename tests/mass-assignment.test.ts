import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CronJobInput, CronJobPatch, Problem } from '../generated/client.js';
import { SERVER_OWNED_MESSAGE } from '../src/lib/problem.js';
import { SERVER_OWNED_FIELDS } from '../src/routes/cron/cron.schemas.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// OWASP API3 (mass assignment): a body may carry only what an owner writes. Every field the
// service owns is refused on every write, by name, and nothing is changed.

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

/** A value of a plausible type for each field, as an attacker would send it. */
const attempts: Record<string, unknown> = {
  id: '6650f1c2a8b4e9d2c4a1b2c3',
  _id: '6650f1c2a8b4e9d2c4a1b2c3',
  __v: 7,
  ownerId: 'someone-else',
  status: 'running',
  lastRunAt: '2020-01-01T00:00:00.000Z',
  nextRunAt: '2020-01-01T00:00:00.000Z',
  createdAt: '2020-01-01T00:00:00.000Z',
  updatedAt: '2020-01-01T00:00:00.000Z',
  pausedReason: 'none',
  consecutiveFailures: 0,
  slotsFrom: '2020-01-01T00:00:00.000Z',
  lastSlotAt: '2020-01-01T00:00:00.000Z',
  lastScheduledRunId: '6650f1c2a8b4e9d2c4a1b2c3',
  lastManualRunId: '6650f1c2a8b4e9d2c4a1b2c3',
  payloadAuthorEmail: 'me@example.com',
};

describe('server-owned fields', () => {
  it('the list covers every field of a job that is not writable, and the model internals', () => {
    expect([...SERVER_OWNED_FIELDS].sort()).toEqual(Object.keys(attempts).sort());
  });

  const fields = Object.keys(attempts);

  it.each(fields)('POST with "%s" is 400 naming it as server-owned, and creates nothing', async (field) => {
    const sub = `ma-${randomUUID().slice(0, 8)}`;
    const api = h.client(sub);
    const res = await api.POST('/api/cron/jobs', {
      body: { ...bodies.sendEmail(), [field]: attempts[field] } as CronJobInput,
    });
    expect(res.response.status).toBe(400);
    const problem = res.error as Problem;
    expect(problem.type).toBe('/problems/invalid-request');
    expect(problem.errors).toEqual([{ in: 'body', path: field, message: SERVER_OWNED_MESSAGE }]);
    expect(problem.detail).toContain(`${field}: ${SERVER_OWNED_MESSAGE}`);
    expect((await api.GET('/api/cron/jobs', {})).data!.items).toEqual([]);
  });

  it.each(
    fields.flatMap(
      (field) =>
        [
          ['PUT', field],
          ['PATCH', field],
        ] as const,
    ),
  )('%s with "%s" is 400 naming it, and the job is unchanged', async (method, field) => {
    const api = h.client(`ma-${randomUUID().slice(0, 8)}`);
    const { data: job } = await api.POST('/api/cron/jobs', { body: bodies.sendEmail() });
    const path = { id: job!.id };
    const res =
      method === 'PUT'
        ? await api.PUT('/api/cron/jobs/{id}', {
            params: { path },
            body: { ...bodies.sendEmail(), [field]: attempts[field] } as CronJobInput,
          })
        : await api.PATCH('/api/cron/jobs/{id}', {
            params: { path },
            body: { enabled: false, [field]: attempts[field] } as CronJobPatch,
          });
    expect(res.response.status).toBe(400);
    expect((res.error as Problem).errors).toEqual([{ in: 'body', path: field, message: SERVER_OWNED_MESSAGE }]);
    expect((await api.GET('/api/cron/jobs/{id}', { params: { path } })).data).toEqual(job);
  });

  it('an unknown field is still called unknown, and a nested "ownerId" inside the payload is not server-owned but unknown', async () => {
    const api = h.client(`ma-${randomUUID().slice(0, 8)}`);
    const b = bodies.sendEmail();
    const res = await api.POST('/api/cron/jobs', {
      body: { ...b, colour: 'red', payload: { ...b.payload, ownerId: 'x' } } as CronJobInput,
    });
    expect(res.response.status).toBe(400);
    expect((res.error as Problem).errors).toEqual(
      expect.arrayContaining([
        { in: 'body', path: 'colour', message: 'unknown field' },
        { in: 'body', path: 'payload.ownerId', message: 'unknown field' },
      ]),
    );
  });
});
