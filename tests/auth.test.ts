import { randomUUID } from 'node:crypto';
import { sign } from 'hono/jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CronClient, createCronClient, type Problem } from '../generated/client.js';
import { assertMatchesSpec, contractCheck } from './helpers/contract.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const owner = (role = 'user') => `auth-${role}-${randomUUID().slice(0, 8)}`;
const inAMinute = () => Math.floor(Date.now() / 1000) + 60;
type Answer = { response: Response; error?: unknown };

/** The generated client with a token carrying extra claims, answers checked against the spec. */
function clientWith(sub: string, claims: Record<string, unknown>): CronClient {
  const client = createCronClient({ baseUrl: h.baseUrl, getToken: () => h.token(sub, { claims }) });
  client.use(contractCheck);
  return client;
}

function expectProblem(res: Answer, status: number, code: string): Problem {
  expect(res.response.status).toBe(status);
  expect(res.response.headers.get('Content-Type')).toMatch(/^application\/problem\+json/);
  const problem = res.error as Problem;
  expect(problem).toMatchObject({
    type: `/problems/${code}`,
    status,
    title: expect.any(String),
    detail: expect.stringMatching(/\S/),
  });
  return problem;
}

/** Every job of the list, page by page. */
async function allIds(api: CronClient, query: { ownerId?: string } = {}): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const { data } = await api.GET('/api/cron/jobs', {
      params: { query: { ...query, limit: 100, ...(cursor ? { cursor } : {}) } },
    });
    ids.push(...data!.items.map((j) => j.id));
    cursor = data!.nextCursor ?? undefined;
  } while (cursor);
  return ids;
}

const create = async (sub: string) => (await h.client(sub).POST('/api/cron/jobs', { body: bodies.sendEmail() })).data!;

describe('authentication', () => {
  const rows: [label: string, header: () => Promise<string | undefined>, detail: RegExp][] = [
    ['no Authorization header', async () => undefined, /Bearer/],
    ['a Basic scheme', async () => 'Basic xyz', /Bearer/],
    ['Bearer without a token', async () => 'Bearer ', /Bearer/],
    ['a token that is not a JWT', async () => 'Bearer not.a.jwt', /invalid/],
    [
      'a token signed with another secret',
      async () => `Bearer ${await h.token(owner(), { secret: 'another-secret-that-is-32-chars-long!!' })}`,
      /invalid/,
    ],
    ['an expired token', async () => `Bearer ${await h.token(owner(), { expiresInSeconds: -60 })}`, /expired/],
    ['a token without exp', async () => `Bearer ${await sign({ sub: owner() }, h.config.JWT_SECRET, 'HS256')}`, /exp/],
    [
      'a token without sub',
      async () => `Bearer ${await sign({ exp: inAMinute() }, h.config.JWT_SECRET, 'HS256')}`,
      /sub/,
    ],
    ['a token with an empty sub', async () => `Bearer ${await h.token('')}`, /sub/],
    [
      'a token signed with HS512',
      async () => `Bearer ${await sign({ sub: owner(), exp: inAMinute() }, h.config.JWT_SECRET, 'HS512')}`,
      /invalid/,
    ],
    [
      'an unsigned alg "none" token',
      async () => {
        const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        return `Bearer ${part({ alg: 'none', typ: 'JWT' })}.${part({ sub: owner(), exp: inAMinute(), role: 'admin' })}.`;
      },
      /invalid/,
    ],
  ];

  it.each(rows)('answers 401 for %s', async (_label, header, detail) => {
    const value = await header();
    const response = await fetch(`${h.baseUrl}/api/cron/jobs`, {
      headers: value === undefined ? {} : { Authorization: value },
    });
    const body = await response.json();
    assertMatchesSpec('/api/cron/jobs', 'GET', response.status, response.headers.get('Content-Type'), body);
    expect(expectProblem({ response, error: body }, 401, 'unauthorized').detail).toMatch(detail);
  });

  it('checks the token before the body: an invalid body without a token is 401, not 400', async () => {
    const response = await fetch(`${h.baseUrl}/api/cron/jobs`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"type":"nope"}',
    });
    const body = await response.json();
    assertMatchesSpec('/api/cron/jobs', 'POST', response.status, response.headers.get('Content-Type'), body);
    expectProblem({ response, error: body }, 401, 'unauthorized');
  });

  it('accepts a valid token (the control for the cases above)', async () => {
    const res = await h.client(owner()).GET('/api/cron/jobs');
    expect(res.response.status).toBe(200);
  });
});

describe("another owner's job is invisible", () => {
  const missing = () => randomUUID().replace(/-/g, '').slice(0, 24);
  const ops: [string, (api: CronClient, id: string) => Promise<Answer>][] = [
    ['GET', (api, id) => api.GET('/api/cron/jobs/{id}', { params: { path: { id } } })],
    [
      'PUT',
      (api, id) =>
        api.PUT('/api/cron/jobs/{id}', { params: { path: { id } }, body: bodies.generateReport('taken-over') }),
    ],
    [
      'PATCH',
      (api, id) =>
        api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: false, name: 'taken-over' } }),
    ],
    ['DELETE', (api, id) => api.DELETE('/api/cron/jobs/{id}', { params: { path: { id } } })],
    ['run-now', (api, id) => api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id } } })],
    ['runs', (api, id) => api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id } } })],
  ];

  it.each(ops)('%s answers 404 exactly like a missing id and changes nothing', async (_op, call) => {
    const sub = owner();
    const job = await create(sub);
    const stranger = h.client(owner());
    const theirs = expectProblem(await call(stranger, job.id), 404, 'not-found');
    const absentId = missing();
    const absent = expectProblem(await call(stranger, absentId), 404, 'not-found');
    // Equal but for the id asked for and the request's own id.
    const masked = (p: Problem, id: string) => ({
      ...JSON.parse(JSON.stringify(p).replaceAll(id, '<id>')),
      requestId: '<request>',
    });
    expect(masked(theirs, job.id)).toEqual(masked(absent, absentId));

    const api = h.client(sub);
    expect((await api.GET('/api/cron/jobs/{id}', { params: { path: { id: job.id } } })).data).toEqual(job);
    expect((await api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id: job.id } } })).data!.items).toEqual([]);
    expect((await h.scheduler.models.CronJob.findById(job.id, { nextRunAt: 1 }).lean())?.nextRunAt?.toISOString()).toBe(
      job.nextRunAt,
    );
  });
});

describe('admins', () => {
  it("see everyone's jobs and may filter by ownerId; a user sees only their own", async () => {
    const [a, b] = [owner(), owner()];
    const jobA = await create(a);
    const jobB = await create(b);
    const admin = h.client(owner('admin'), { admin: true });
    expect(await allIds(admin)).toEqual(expect.arrayContaining([jobA.id, jobB.id]));
    expect(await allIds(admin, { ownerId: a })).toEqual([jobA.id]);
    expect(await allIds(h.client(a))).toEqual([jobA.id]);
  });

  it("may GET and PATCH another's job, which stays the owner's", async () => {
    const sub = owner();
    const job = await create(sub);
    const admin = h.client(owner('admin'), { admin: true });
    const got = await admin.GET('/api/cron/jobs/{id}', { params: { path: { id: job.id } } });
    expect(got.data).toEqual(job);
    const patched = await admin.PATCH('/api/cron/jobs/{id}', {
      params: { path: { id: job.id } },
      body: { enabled: false },
    });
    expect(patched.response.status).toBe(200);
    expect(patched.data).toMatchObject({ id: job.id, ownerId: sub, enabled: false, status: 'paused' });
    const seen = await h.client(sub).GET('/api/cron/jobs/{id}', { params: { path: { id: job.id } } });
    expect(seen.data).toMatchObject({ ownerId: sub, enabled: false });
  });

  it('counts a roles: ["admin"] claim as admin', async () => {
    const sub = owner();
    const job = await create(sub);
    const admin = clientWith(owner('admin'), { roles: ['reader', 'admin'] });
    expect(await allIds(admin, { ownerId: sub })).toEqual([job.id]);
    expect((await admin.GET('/api/cron/jobs/{id}', { params: { path: { id: job.id } } })).data).toEqual(job);
    expect((await admin.POST('/api/cron/jobs', { body: bodies.purgeSessions() })).response.status).toBe(201);
  });

  it.each([
    ['role: "Admin"', { role: 'Admin' }],
    ['roles: "admin" (not an array)', { roles: 'admin' }],
    ['roles: ["user"]', { roles: ['user'] }],
  ])('does not count %s as admin', async (_label, claims) => {
    const sub = owner();
    const job = await create(sub);
    const api = clientWith(owner(), claims);
    expectProblem(await api.GET('/api/cron/jobs', { params: { query: { ownerId: sub } } }), 403, 'forbidden');
    expectProblem(await api.GET('/api/cron/jobs/{id}', { params: { path: { id: job.id } } }), 404, 'not-found');
  });
});

describe('users', () => {
  it("get 403 for another owner's ownerId in the list, 200 for their own", async () => {
    const sub = owner();
    const job = await create(sub);
    const api = h.client(sub);
    expectProblem(await api.GET('/api/cron/jobs', { params: { query: { ownerId: owner() } } }), 403, 'forbidden');
    const own = await api.GET('/api/cron/jobs', { params: { query: { ownerId: sub } } });
    expect(own.response.status).toBe(200);
    expect(own.data!.items.map((j) => j.id)).toEqual([job.id]);
  });

  it.each([
    ['purgeSessions', bodies.purgeSessions()],
    [
      'cleanupOldAuditLogs',
      { name: 'cleanup', type: 'cleanupOldAuditLogs' as const, cron: '0 4 * * *', payload: { olderThanDays: 90 } },
    ],
  ])('get 403 creating an admin-only %s job, and nothing is stored', async (type, body) => {
    const sub = owner();
    const api = h.client(sub);
    expect(expectProblem(await api.POST('/api/cron/jobs', { body }), 403, 'forbidden').detail).toContain(type);
    expect(await allIds(api)).toEqual([]);
  });

  it('get 403 changing their own job to an admin-only type', async () => {
    const sub = owner();
    const job = await create(sub);
    const api = h.client(sub);
    const res = await api.PATCH('/api/cron/jobs/{id}', {
      params: { path: { id: job.id } },
      body: { type: 'purgeSessions', payload: { inactiveDays: 30 } },
    });
    expectProblem(res, 403, 'forbidden');
    expect((await api.GET('/api/cron/jobs/{id}', { params: { path: { id: job.id } } })).data).toEqual(job);
  });

  it('may still pause and delete their own job after an admin gave it an admin-only type', async () => {
    const sub = owner();
    const job = await create(sub);
    const admin = h.client('some-admin', { admin: true });
    const retyped = await admin.PATCH('/api/cron/jobs/{id}', {
      params: { path: { id: job.id } },
      body: { type: 'purgeSessions', payload: { inactiveDays: 30 } },
    });
    expect(retyped.data).toMatchObject({ type: 'purgeSessions', ownerId: sub });
    const api = h.client(sub);
    const paused = await api.PATCH('/api/cron/jobs/{id}', {
      params: { path: { id: job.id } },
      body: { enabled: false },
    });
    expect(paused.data).toMatchObject({ enabled: false, type: 'purgeSessions' });
    expect((await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id: job.id } } })).response.status).toBe(204);
  });
});

describe('health probes', () => {
  it.each(['/healthz', '/readyz'] as const)('%s needs no token and answers 200 {status: "ok"}', async (path) => {
    const anonymous = createCronClient({ baseUrl: h.baseUrl });
    anonymous.use(contractCheck);
    const res = await anonymous.GET(path);
    expect(res.response.status).toBe(200);
    expect(res.data).toEqual({ status: 'ok' });
  });
});
