import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CronJobInput, Problem } from '../generated/client.js';
import { assertMatchesSpec } from './helpers/contract.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// GET /api/cron/preview through the real HTTP server and the generated client (every answer
// checked against openapi/openapi.json). `from` pins the instant, so DST days are previewed
// without waiting for them.

let h: Harness;
/** A stricter service: five fields only, fires at least 300 s apart. */
let strict: Harness;
beforeAll(async () => {
  [h, strict] = await Promise.all([
    startHarness(),
    startHarness({ env: { CRON_ALLOW_SECONDS: 'false', CRON_MIN_INTERVAL_SECONDS: '300' } }),
  ]);
});
afterAll(() => Promise.all([h?.stop(), strict?.stop()]));

const user = () => `preview-${randomUUID().slice(0, 8)}`;
type Query = {
  cron: string;
  timezone?: string;
  count?: number;
  from?: string;
  type?: 'sendEmail' | 'purgeSessions' | 'generateReport' | 'cleanupOldAuditLogs';
};
const preview = (query: Query, harness: Harness = h) =>
  harness.client(user()).GET('/api/cron/preview', { params: { query } });

function expectInvalid(res: { response: Response; error?: unknown }, path: string, message?: RegExp): Problem {
  expect(res.response.status).toBe(400);
  expect(res.response.headers.get('Content-Type')).toMatch(/^application\/problem\+json/);
  const problem = res.error as Problem;
  expect(problem).toMatchObject({ type: '/problems/invalid-request', status: 400 });
  expect(problem.errors).toContainEqual(
    expect.objectContaining({ in: 'query', path, ...(message ? { message: expect.stringMatching(message) } : {}) }),
  );
  return problem;
}

describe('GET /api/cron/preview: the next fires', () => {
  it('Berlin spring forward: "30 2 * * *" shows 03:30+02:00 on 2026-03-29, marked shifted, with the description', async () => {
    const { data, response } = await preview({
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      count: 3,
      from: '2026-03-27T12:00:00Z',
    });
    expect(response.status).toBe(200);
    expect(data).toEqual({
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      description: 'At 02:30',
      kind: 'fixed-time',
      fires: [
        { utc: '2026-03-28T01:30:00.000Z', local: '2026-03-28T02:30:00+01:00', dst: null },
        { utc: '2026-03-29T01:30:00.000Z', local: '2026-03-29T03:30:00+02:00', dst: 'shifted' },
        { utc: '2026-03-30T00:30:00.000Z', local: '2026-03-30T02:30:00+02:00', dst: null },
      ],
    });
  });

  it('New York fall back: "30 1 * * *" fires once on 2026-11-01, at 01:30-04:00, marked repeated-once', async () => {
    const { data } = await preview({
      cron: '30 1 * * *',
      timezone: 'America/New_York',
      count: 2,
      from: '2026-10-31T12:00:00Z',
    });
    expect(data!.fires).toEqual([
      { utc: '2026-11-01T05:30:00.000Z', local: '2026-11-01T01:30:00-04:00', dst: 'repeated-once' },
      { utc: '2026-11-02T06:30:00.000Z', local: '2026-11-02T01:30:00-05:00', dst: null },
    ]);
  });

  it('an interval cron runs through the repeated hour twice, unmarked: "*/30 * * * *" in Berlin on 2026-10-25', async () => {
    const { data } = await preview({
      cron: '*/30 * * * *',
      timezone: 'Europe/Berlin',
      count: 4,
      from: '2026-10-24T23:45:00Z',
    });
    expect(data!.kind).toBe('interval');
    expect(data!.description).toBe('Every 30 minutes');
    expect(data!.fires.map((f) => [f.local, f.dst])).toEqual([
      ['2026-10-25T02:00:00+02:00', null],
      ['2026-10-25T02:30:00+02:00', null],
      ['2026-10-25T02:00:00+01:00', null],
      ['2026-10-25T02:30:00+01:00', null],
    ]);
  });

  it('Asia/Kolkata: "0 9 * * 1-5" fires at 09:00+05:30 (03:30Z) on weekdays', async () => {
    const { data } = await preview({
      cron: '0 9 * * 1-5',
      timezone: 'Asia/Kolkata',
      count: 3,
      from: '2026-05-01T00:00:00Z',
    });
    expect(data!.description).toBe('At 09:00, Monday through Friday');
    expect(data!.fires.map((f) => [f.utc, f.local])).toEqual([
      ['2026-05-01T03:30:00.000Z', '2026-05-01T09:00:00+05:30'], // Friday
      ['2026-05-04T03:30:00.000Z', '2026-05-04T09:00:00+05:30'], // Monday
      ['2026-05-05T03:30:00.000Z', '2026-05-05T09:00:00+05:30'],
    ]);
  });

  it('defaults: five fires, in UTC, strictly after now', async () => {
    const before = Date.now();
    const { data } = await preview({ cron: '* * * * *' });
    expect(data!.timezone).toBe('UTC');
    expect(data!.fires).toHaveLength(5);
    const times = data!.fires.map((f) => Date.parse(f.utc));
    expect(times[0]).toBeGreaterThan(before);
    expect(times[0]).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(times.slice(1).map((t, i) => t - times[i]!)).toEqual([60_000, 60_000, 60_000, 60_000]);
    expect(data!.fires.every((f) => f.local === f.utc.replace('.000Z', '+00:00'))).toBe(true);
  });

  it('a cron that fires every four years: 50 leap days from 2199 on (2300 is none), the last in 2404', async () => {
    const { data } = await preview({
      cron: '0 0 29 2 *',
      timezone: 'Europe/Berlin',
      count: 50,
      from: '2199-12-31T00:00:00Z',
    });
    expect(data!.fires).toHaveLength(50);
    expect(data!.fires[0]!.local).toBe('2204-02-29T00:00:00+01:00');
    expect(data!.fires[49]!.local).toBe('2404-02-29T00:00:00+01:00');
  });

  it('lists up to 50 fires, and describes a seconds cron where seconds are allowed', async () => {
    const { data } = await preview({ cron: '*/10 * * * * *', count: 50, from: '2026-05-01T00:00:00Z' });
    expect(data!.description).toBe('Every 10 seconds');
    expect(data!.fires).toHaveLength(50);
    expect(data!.fires[49]!.utc).toBe('2026-05-01T00:08:20.000Z');
  });

  it('the first fire is the nextRunAt a job with the same cron and zone gets', async () => {
    const api = h.client(user());
    const created = await api.POST('/api/cron/jobs', {
      body: { ...bodies.sendEmail(), cron: '15 7 * * *', timezone: 'America/New_York' } as CronJobInput,
    });
    expect(created.response.status).toBe(201);
    const { data } = await api.GET('/api/cron/preview', {
      params: { query: { cron: '15 7 * * *', timezone: 'America/New_York', count: 1 } },
    });
    expect(data!.fires[0]!.utc).toBe(created.data!.nextRunAt);
  });
});

describe('GET /api/cron/preview: bad input is 400 problem+json at the field', () => {
  it.each([
    [{ cron: '61 * * * *' }, 'cron', /expected range 0-59/],
    [{ cron: 'not a cron' }, 'cron', undefined],
    [{ cron: '@daily' }, 'cron', /macros/],
    [{ cron: '0 0 30 2 *' }, 'cron', undefined],
    [{ cron: '' }, 'cron', undefined],
    [{ cron: '0 8 * * *', timezone: 'Mars/Olympus' }, 'timezone', /IANA/],
    [{ cron: '0 8 * * *', count: 0 }, 'count', undefined],
    [{ cron: '0 8 * * *', count: 51 }, 'count', undefined],
    [{ cron: '0 8 * * *', count: 2.5 }, 'count', undefined],
    [{ cron: '0 8 * * *', from: 'yesterday' }, 'from', undefined],
    [{ cron: '0 8 * * *', type: 'backupDatabase' as never }, 'type', undefined],
    [{ cron: '0 8 * * *', from: '1969-12-31T23:59:59Z' }, 'from', /between 1970 and 2199/],
    [{ cron: '0 8 * * *', from: '2200-01-01T00:00:00Z' }, 'from', /between 1970 and 2199/],
  ] as [Query, string, RegExp | undefined][])('%j -> 400 at query.%s', async (query, path, message) => {
    expectInvalid(await preview(query), path, message);
  });

  it('a missing cron, a non-numeric count and an unknown parameter are named', async () => {
    const raw = async (qs: string) => {
      const response = await fetch(`${h.baseUrl}/api/cron/preview?${qs}`, {
        headers: { Authorization: `Bearer ${await h.token(user())}` },
      });
      const error = await response.json();
      assertMatchesSpec('/api/cron/preview', 'get', response.status, response.headers.get('Content-Type'), error);
      return { response, error };
    };
    expectInvalid(await raw('timezone=UTC'), 'cron');
    expectInvalid(await raw('cron=0+8+*+*+*&count=many'), 'count');
    expectInvalid(await raw('cron=0+8+*+*+*&limit=5'), 'limit', /unknown field/);
  });

  it('applies the service rules as job creation does, with the same message', async () => {
    for (const [cron, message] of [
      ['*/10 * * * * *', /^a seconds field \(six fields\) is not allowed/],
      ['*/2 * * * *', /^fires every 120 s at the shortest; the minimum interval is 300 s$/],
    ] as const) {
      const problem = expectInvalid(await preview({ cron }, strict), 'cron', message);
      const created = await strict
        .client(user())
        .POST('/api/cron/jobs', { body: { ...bodies.sendEmail(), cron } as CronJobInput });
      expect(created.response.status).toBe(400);
      expect((created.error as Problem).errors).toEqual([
        { in: 'body', path: 'cron', message: problem.errors![0]!.message },
      ]);
    }
    expect((await preview({ cron: '*/5 * * * *' }, strict)).response.status).toBe(200);
    // The same seconds cron is fine where the configuration allows it.
    expect((await preview({ cron: '*/10 * * * * *' })).response.status).toBe(200);
  });

  it("with `type`, that type's own minimum interval applies too, as it does for a job of that type", async () => {
    const api = h.client(user(), { admin: true });
    const cron = '*/30 * * * *';
    expect((await preview({ cron })).response.status).toBe(200);
    const problem = expectInvalid(
      await api.GET('/api/cron/preview', { params: { query: { cron, type: 'purgeSessions' } } }),
      'cron',
      /minimum interval is 3600 s$/,
    );
    const created = await api.POST('/api/cron/jobs', { body: { ...bodies.purgeSessions(), cron } as CronJobInput });
    expect((created.error as Problem).errors).toEqual([
      { in: 'body', path: 'cron', message: problem.errors![0]!.message },
    ]);
    expect((await preview({ cron: '0 * * * *', type: 'purgeSessions' })).response.status).toBe(200);
  });

  it('needs a token like every /api/cron route', async () => {
    const response = await fetch(`${h.baseUrl}/api/cron/preview?cron=0+8+*+*+*`);
    expect(response.status).toBe(401);
    expect(response.headers.get('Content-Type')).toMatch(/^application\/problem\+json/);
    assertMatchesSpec('/api/cron/preview', 'get', 401, response.headers.get('Content-Type'), await response.json());
  });
});
