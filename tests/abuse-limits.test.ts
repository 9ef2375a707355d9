import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Problem } from '../generated/client.js';
import { createApp } from '../src/app.js';
import { connectDb, pingDb } from '../src/db/index.js';
import { openGuards } from '../src/lib/guards.js';
import { RATE_LIMIT_COLLECTION } from '../src/lib/rate-limit.js';
import { openScheduler } from '../src/scheduler/index.js';
import { assertMatchesSpec } from './helpers/contract.js';
import { bodies, type Harness, startHarness, waitFor } from './helpers/harness.js';

// OWASP API4: rate limits per address, per user and for run-now, counted in the database;
// a cap on jobs per owner; the minimum interval of each type; page size and body size.

const user = (prefix = 'rl') => `${prefix}-${randomUUID().slice(0, 8)}`;

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** One request as `sub` (or without a token), its answer checked against the spec. */
async function call(
  h: Pick<Harness, 'token'>,
  baseUrl: string,
  method: string,
  url: string,
  spec: string,
  o: { sub?: string; admin?: boolean; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.sub) headers.Authorization = `Bearer ${await h.token(o.sub, { admin: !!o.admin })}`;
  if (o.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(baseUrl + url, {
    method,
    headers,
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
  const text = await response.text();
  const body = text ? JSON.parse(text) : undefined;
  assertMatchesSpec(spec, method, response.status, response.headers.get('Content-Type'), body);
  return { status: response.status, headers: response.headers, body };
}

const listAs = (h: Harness, sub?: string, headers?: Record<string, string>) =>
  call(h, h.baseUrl, 'GET', '/api/cron/jobs', '/api/cron/jobs', {
    ...(sub ? { sub } : {}),
    ...(headers ? { headers } : {}),
  });

function expectRateLimited(answer: Answer, policy: string) {
  expect(answer.status).toBe(429);
  expect(answer.headers.get('Content-Type')).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ type: '/problems/rate-limited', status: 429 });
  expect((answer.body as Problem).detail).toMatch(/Retry in \d+ s/);
  const retryAfter = Number(answer.headers.get('Retry-After'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(answer.headers.get('RateLimit')).toMatch(new RegExp(`"${policy}";r=0;t=\\d+`));
}

describe('per-user limit', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: { RATE_LIMIT_PER_USER: '4', RATE_LIMIT_PER_IP: '1000', RATE_LIMIT_WINDOW_SECONDS: '60' },
    });
  });
  afterAll(() => h.stop());

  it('advertises both policies (draft-ietf-httpapi-ratelimit-headers), counts down, then answers 429 with Retry-After', async () => {
    const sub = user();
    for (let i = 0; i < 4; i++) {
      const ok = await listAs(h, sub);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('RateLimit-Policy')).toBe('"ip";q=1000;w=60, "user";q=4;w=60');
      expect(ok.headers.get('RateLimit')).toMatch(new RegExp(`^"ip";r=${999 - i};t=\\d+, "user";r=${3 - i};t=\\d+$`));
    }
    expectRateLimited(await listAs(h, sub), 'user');
    // Every operation counts against the same quota, writes included.
    expectRateLimited(
      await call(h, h.baseUrl, 'POST', '/api/cron/jobs', '/api/cron/jobs', { sub, body: bodies.sendEmail() }),
      'user',
    );
    expect(await h.scheduler.models.CronJob.countDocuments({ ownerId: sub })).toBe(0);
    // The catalog too, with the 429 its spec documents (checked by call()).
    expectRateLimited(await call(h, h.baseUrl, 'GET', '/api/cron/job-types', '/api/cron/job-types', { sub }), 'user');
  });

  it('another user has a quota of their own', async () => {
    const first = user();
    for (let i = 0; i < 5; i++) await listAs(h, first);
    expect((await listAs(h, first)).status).toBe(429);
    expect((await listAs(h, user())).status).toBe(200);
  });
});

describe('per-address limit', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { RATE_LIMIT_PER_IP: '3', RATE_LIMIT_PER_USER: '1000', TRUST_PROXY_HOPS: '1' } });
  });
  afterAll(() => h.stop());

  it('counts every request from one address, whoever sends it, and before the token is checked', async () => {
    const from = { 'X-Forwarded-For': '198.51.100.7, 203.0.113.9' };
    for (let i = 0; i < 3; i++) expect((await listAs(h, user(), from)).status).toBe(200);
    expectRateLimited(await listAs(h, user(), from), 'ip');
    // Without a token it is still the address's quota that answers, not 401: token guessing is limited too.
    expectRateLimited(await listAs(h, undefined, from), 'ip');
  });

  it('with TRUST_PROXY_HOPS=1 the address is the one our proxy appended, not what the client wrote before it', async () => {
    for (let i = 0; i < 3; i++)
      expect((await listAs(h, user(), { 'X-Forwarded-For': `10.9.9.${i}, 203.0.113.50` })).status).toBe(200);
    expect((await listAs(h, user(), { 'X-Forwarded-For': '10.9.9.99, 203.0.113.50' })).status).toBe(429);
    expect((await listAs(h, user(), { 'X-Forwarded-For': '203.0.113.51' })).status).toBe(200);
  });
});

describe('run-now limit', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: { RATE_LIMIT_RUN_NOW_PER_USER: '2', RATE_LIMIT_PER_USER: '100', RATE_LIMIT_PER_IP: '1000' },
    });
  });
  afterAll(() => h.stop());

  it('is stricter than the others, and only run-now counts against it', async () => {
    const sub = user();
    const { data: job } = await h.client(sub).POST('/api/cron/jobs', { body: bodies.generateReport() });
    const runNow = () =>
      call(h, h.baseUrl, 'POST', `/api/cron/jobs/${job!.id}/run-now`, '/api/cron/jobs/{id}/run-now', { sub });
    for (let i = 0; i < 2; i++) {
      const ok = await runNow();
      expect(ok.status).toBe(202);
      expect(ok.headers.get('RateLimit-Policy')).toBe('"ip";q=1000;w=60, "user";q=100;w=60, "run-now";q=2;w=60');
    }
    expectRateLimited(await runNow(), 'run-now');
    expect(await h.scheduler.models.Run.countDocuments({ jobId: job!.id })).toBe(2);
    expect((await listAs(h, sub)).status).toBe(200);
  });
});

/** A second API process's worth on the harness's database: its own connection, scheduler, guards and server. */
async function startSecondInstance(h: Harness) {
  const conn = await connectDb(inject('mongoUri'), h.config, h.dbName);
  const scheduler = await openScheduler(conn, h.config, h.logger);
  const guards = await openGuards(conn, h.config, h.logger);
  const app = createApp({
    config: h.config,
    logger: h.logger,
    service: scheduler.service,
    guards,
    ready: () => pingDb(conn),
  });
  const server = await new Promise<ReturnType<typeof serve>>((ok) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => ok(s));
  });
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async stop() {
      guards.stop();
      await new Promise((ok) => server.close(ok));
      await conn.close();
    },
  };
}

describe('limits shared by two API instances on one database', () => {
  let h: Harness;
  let second: Awaited<ReturnType<typeof startSecondInstance>>;
  beforeAll(async () => {
    // A quota of 4 leaves no local allowance (floor(4 x 0.1) = 0): every hit is reconciled, so the count is exact.
    h = await startHarness({ env: { RATE_LIMIT_PER_USER: '4', RATE_LIMIT_PER_IP: '1000' } });
    second = await startSecondInstance(h);
  });
  afterAll(async () => {
    await second.stop();
    await h.stop();
  });

  it('requests alternating between the instances share one quota', async () => {
    const sub = user();
    const via = (baseUrl: string) => call(h, baseUrl, 'GET', '/api/cron/jobs', '/api/cron/jobs', { sub });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await via(i % 2 ? second.baseUrl : h.baseUrl)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
  });

  it('a parallel burst at one instance gets at most the quota through', async () => {
    const sub = user();
    const answers = await Promise.all(Array.from({ length: 12 }, () => listAs(h, sub)));
    const passed = answers.filter((a) => a.status === 200).length;
    expect(passed).toBeLessThanOrEqual(4);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(12 - passed);
  });
});

/** Two API instances on one database, with a per-user quota of 20 and a local share of 0.25 (5 hits). */
function twoInstances(syncMs: number) {
  const env = {
    RATE_LIMIT_PER_USER: '20',
    RATE_LIMIT_LOCAL_SHARE: '0.25',
    RATE_LIMIT_PER_IP: '0',
    // A day: the window cannot roll over (and reset the counts) in the middle of a test.
    RATE_LIMIT_WINDOW_SECONDS: '86400',
    RATE_LIMIT_SYNC_MS: String(syncMs),
  };
  const state = { h: undefined as unknown as Harness, second: undefined as unknown as { baseUrl: string } };
  let second: Awaited<ReturnType<typeof startSecondInstance>>;
  beforeAll(async () => {
    state.h = await startHarness({ env });
    state.second = second = await startSecondInstance(state.h);
  });
  afterAll(async () => {
    await second.stop();
    await state.h.stop();
  });
  return state;
}
const QUOTA = 20;
const ALLOWANCE = 5;

describe('counted in memory, published when the allowance is used (background sync every 60 s)', () => {
  const two = twoInstances(60_000);
  /** What the database holds for a user's key, summed over the instances' documents. */
  const stored = async (sub: string) =>
    (
      await two.h.conn
        .collection<{ counts: { p: string; k: string; n: number }[] }>(RATE_LIMIT_COLLECTION)
        .find({})
        .toArray()
    )
      .flatMap((doc) => doc.counts)
      .filter((c) => c.p === 'user' && c.k === sub)
      .reduce((sum, c) => sum + c.n, 0);

  it('an instance admits its allowance without writing, and the next hit publishes the count before it is judged', async () => {
    const sub = user();
    for (let i = 0; i < ALLOWANCE; i++) expect((await listAs(two.h, sub)).status).toBe(200);
    expect(await stored(sub)).toBe(0);
    expect((await listAs(two.h, sub)).status).toBe(200);
    expect(await stored(sub)).toBe(ALLOWANCE + 1);
  });
});

describe('counted in memory, reconciled in batches (background sync every 100 ms)', () => {
  const two = twoInstances(100);

  it('a burst at both instances at once gets at most quota + 2 x allowance through, and the quota holds across them', async () => {
    const sub = user();
    const via = (baseUrl: string) => call(two.h, baseUrl, 'GET', '/api/cron/jobs', '/api/cron/jobs', { sub });
    const burst = await Promise.all(
      Array.from({ length: 80 }, (_, i) => via(i % 2 ? two.second.baseUrl : two.h.baseUrl)),
    );
    let passed = burst.filter((a) => a.status === 200).length;
    expect(burst.filter((a) => a.status === 429)).toHaveLength(80 - passed);
    // Afterwards one request at each instance at a time: once both have read each other's counts
    // the quota is used up (a refused hit may hold a unit back until the next sync), and both refuse.
    await waitFor(
      async () => {
        const [a, b] = [await via(two.h.baseUrl), await via(two.second.baseUrl)];
        passed += [a, b].filter((x) => x.status === 200).length;
        return passed >= QUOTA && a.status === 429 && b.status === 429;
      },
      { timeoutMs: 10_000, intervalMs: 50, what: 'both instances to refuse the used-up key' },
    );
    expect(passed).toBeLessThanOrEqual(QUOTA + 2 * ALLOWANCE);
  });
});

describe('windows and switches', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: { RATE_LIMIT_PER_USER: '2', RATE_LIMIT_PER_IP: '0', RATE_LIMIT_WINDOW_SECONDS: '1' },
    });
  });
  afterAll(() => h.stop());

  it('the quota is whole again once the window has passed', async () => {
    const sub = user();
    await listAs(h, sub);
    await listAs(h, sub);
    const limited = await listAs(h, sub);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('Retry-After')).toBe('1');
    const again = await waitFor(
      async () => {
        const answer = await listAs(h, sub);
        return answer.status === 200 && answer;
      },
      { timeoutMs: 5_000, intervalMs: 250, what: 'the window to reset' },
    );
    expect(again.headers.get('RateLimit')).toMatch(/^"user";r=1;t=1$/);
  });

  it('a quota of 0 turns a policy off: no per-address policy is advertised', async () => {
    const answer = await listAs(h, user());
    expect(answer.headers.get('RateLimit-Policy')).toBe('"user";q=2;w=1');
  });
});

describe('job cap, minimum interval per type, page size', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { MAX_JOBS_PER_OWNER: '3' } });
  });
  afterAll(() => h.stop());

  it('refuses the job over MAX_JOBS_PER_OWNER with 409 job-limit-reached; deleting one makes room', async () => {
    const api = h.client(user('cap'));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push((await api.POST('/api/cron/jobs', { body: bodies.generateReport() })).data!.id);
    const over = await api.POST('/api/cron/jobs', { body: bodies.generateReport() });
    expect(over.response.status).toBe(409);
    expect(over.error).toMatchObject({ type: '/problems/job-limit-reached', title: 'Job limit reached' });
    expect((over.error as Problem).detail).toMatch(/3 jobs.*\(3\)/);
    expect(
      (await h.client(user('cap')).POST('/api/cron/jobs', { body: bodies.generateReport() })).response.status,
    ).toBe(201);
    await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id: ids[0]! } } });
    expect((await api.POST('/api/cron/jobs', { body: bodies.generateReport() })).response.status).toBe(201);
  });

  it.each([
    ['purgeSessions', bodies.purgeSessions],
    [
      'cleanupOldAuditLogs',
      () => ({
        name: `cleanup-${randomUUID()}`,
        type: 'cleanupOldAuditLogs' as const,
        cron: '0 4 * * *',
        payload: { olderThanDays: 90 },
      }),
    ],
  ] as const)(
    '%s keeps its own minimum interval of 3600 s over the service-wide one (1 s in tests)',
    async (_type, body) => {
      const api = h.client(user('interval'), { admin: true });
      const refused = await api.POST('/api/cron/jobs', { body: { ...body(), cron: '*/30 * * * *' } });
      expect(refused.response.status).toBe(400);
      expect((refused.error as Problem).errors).toContainEqual({
        in: 'body',
        path: 'cron',
        message: 'fires every 1800 s at the shortest; the minimum interval is 3600 s',
      });
      const { data: job, response } = await api.POST('/api/cron/jobs', { body: { ...body(), cron: '0 * * * *' } });
      expect(response.status).toBe(201);
      const patched = await api.PATCH('/api/cron/jobs/{id}', {
        params: { path: { id: job!.id } },
        body: { cron: '*/5 * * * *' },
      });
      expect(patched.response.status).toBe(400);
      expect((patched.error as Problem).errors).toContainEqual(
        expect.objectContaining({ path: 'cron', message: expect.stringMatching(/minimum interval is 3600 s/) }),
      );
      // The same frequent cron is fine for a type without a minimum of its own.
      expect(
        (await api.POST('/api/cron/jobs', { body: { ...bodies.generateReport(), cron: '*/5 * * * *' } })).response
          .status,
      ).toBe(201);
    },
  );

  it('a type change onto a type with a longer minimum checks the existing cron against it', async () => {
    const api = h.client(user('interval'), { admin: true });
    const { data: job } = await api.POST('/api/cron/jobs', {
      body: { ...bodies.generateReport(), cron: '*/10 * * * *' },
    });
    const changed = await api.PATCH('/api/cron/jobs/{id}', {
      params: { path: { id: job!.id } },
      body: { type: 'purgeSessions', payload: { inactiveDays: 30 } },
    });
    expect(changed.response.status).toBe(400);
    expect((changed.error as Problem).errors).toContainEqual(
      expect.objectContaining({ path: 'cron', message: expect.stringMatching(/minimum interval is 3600 s/) }),
    );
  });

  it('pages hold 20 jobs unless asked, at most 100: limit=101 is 400 at limit', async () => {
    const api = h.client(user('page'), { admin: true });
    // Another owner's many jobs, made directly: the cap of 3 is for the API.
    const owner = user('many');
    await h.scheduler.models.CronJob.insertMany(
      Array.from({ length: 105 }, (_, i) => ({
        ...bodies.generateReport(`bulk-${i}`),
        timezone: 'UTC',
        ownerId: owner,
      })),
    );
    expect((await api.GET('/api/cron/jobs', { params: { query: { ownerId: owner } } })).data!.items).toHaveLength(20);
    const full = await api.GET('/api/cron/jobs', { params: { query: { ownerId: owner, limit: 100 } } });
    expect(full.data!.items).toHaveLength(100);
    expect(full.data!.nextCursor).not.toBeNull();
    const over = await api.GET('/api/cron/jobs', { params: { query: { ownerId: owner, limit: 101 } } });
    expect(over.response.status).toBe(400);
    expect((over.error as Problem).errors).toContainEqual(expect.objectContaining({ in: 'query', path: 'limit' }));
  });
});
