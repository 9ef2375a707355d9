import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CronClient, CronJob, CronJobInput, CronJobPatch, Problem } from '../generated/client.js';
import { PROBLEMS, type ProblemCode } from '../src/lib/problem.js';
import { assertMatchesSpec } from './helpers/contract.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const owner = () => `val-${randomUUID().slice(0, 8)}`;
type Where = { in: 'body' | 'query' | 'path' | 'header'; path: string; message?: RegExp };
const at = (path: string, message?: RegExp): Where => ({ in: 'body', path, ...(message ? { message } : {}) });
type Answer = { response: Response; error?: unknown };

/** A problem+json answer with the code's status, type and title, and an errors[] entry at each place. */
function expectProblem(res: Answer, code: ProblemCode, ...where: Where[]): Problem {
  expect(res.response.status).toBe(PROBLEMS[code].status);
  expect(res.response.headers.get('Content-Type')).toMatch(/^application\/problem\+json/);
  const problem = res.error as Problem;
  expect(problem).toMatchObject({
    type: `/problems/${code}`,
    title: PROBLEMS[code].title,
    status: PROBLEMS[code].status,
  });
  expect(problem.detail).toMatch(/\S/);
  for (const w of where) {
    expect(problem.errors).toContainEqual(
      expect.objectContaining({
        in: w.in,
        path: w.path,
        ...(w.message ? { message: expect.stringMatching(w.message) } : {}),
      }),
    );
  }
  return problem;
}

/** A request the typed client cannot express; the answer is still checked against the spec. */
async function raw(
  method: string,
  specPath: string | null,
  url: string,
  init: { body?: RequestInit['body']; contentType?: string } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { Authorization: `Bearer ${await h.token(owner())}` };
  if (init.contentType) headers['Content-Type'] = init.contentType;
  const response = await fetch(h.baseUrl + url, {
    method,
    headers,
    ...(init.body !== undefined ? { body: init.body, duplex: 'half' } : {}),
  });
  const text = await response.text();
  const error = text ? JSON.parse(text) : undefined;
  if (specPath) assertMatchesSpec(specPath, method, response.status, response.headers.get('Content-Type'), error);
  return { response, error };
}

const post = (api: CronClient, body: object) => api.POST('/api/cron/jobs', { body: body as CronJobInput });
const getJob = (api: CronClient, id: string) => api.GET('/api/cron/jobs/{id}', { params: { path: { id } } });
const email = (payload: object) => () => {
  const b = bodies.sendEmail();
  return { ...b, payload: { ...b.payload, ...payload } };
};
const withField = (fields: object) => () => ({ ...bodies.sendEmail(), ...fields });

describe('POST /jobs: every rule answers 400 at the bad field', () => {
  const rows: [label: string, body: () => object, where: Where, admin?: boolean][] = [
    ['unknown type', withField({ type: 'backupDatabase' }), at('type')],
    ['missing type', withField({ type: undefined }), at('type')],
    ...['61 * * * *', 'not a cron', 'a b c d e', '* * * *', '0 0 0 * * * *', '@daily', '0 0 30 2 *'].map(
      (cron) => [`cron "${cron}"`, withField({ cron }), at('cron')] as [string, () => object, Where],
    ),
    ...['Mars/Olympus', '', '../etc/passwd'].map(
      (timezone) =>
        [`timezone "${timezone}"`, withField({ timezone }), at('timezone')] as [string, () => object, Where],
    ),
    ['sendEmail with a bad address', email({ to: 'not-an-email' }), at('payload.to')],
    ['sendEmail without subject', email({ subject: undefined }), at('payload.subject')],
    ['sendEmail with an unknown template', email({ template: 'newsletter' }), at('payload.template')],
    ['digest template without its count param', email({ params: {} }), at('payload.params.count', /count/)],
    ['sendEmail with an unknown payload field', email({ cc: 'x@example.com' }), at('payload.cc', /unknown field/)],
    ...[0, 1.5, '7'].map(
      (inactiveDays) =>
        [
          `purgeSessions inactiveDays ${JSON.stringify(inactiveDays)}`,
          () => ({ ...bodies.purgeSessions(), payload: { inactiveDays } }),
          at('payload.inactiveDays'),
          true,
        ] as [string, () => object, Where, boolean],
    ),
    [
      'generateReport with an unknown period',
      () => ({ ...bodies.generateReport(), payload: { type: 'runs', period: 'year' } }),
      at('payload.period'),
    ],
    ...['', '   ', 'x'.repeat(101)].map(
      (name) =>
        [`name of ${name.length} chars "${name.slice(0, 5)}"`, withField({ name }), at('name')] as [
          string,
          () => object,
          Where,
        ],
    ),
    ['enabled "yes"', withField({ enabled: 'yes' }), at('enabled')],
    ['an unknown top-level field', withField({ colour: 'blue' }), at('colour', /unknown field/)],
  ];
  it.each(rows)('refuses %s and stores nothing', async (_label, body, where, admin) => {
    const sub = owner();
    const api = h.client(sub, { admin: !!admin });
    expectProblem(await post(api, body()), 'invalid-request', where);
    const list = await api.GET('/api/cron/jobs', { params: { query: { ownerId: sub } } });
    expect(list.data!.items).toEqual([]);
  });

  it.each(['purgeSessions', 'cleanupOldAuditLogs'] as const)(
    '%s is for admins: 403 for a user, 201 for an admin',
    async (type) => {
      const body =
        type === 'purgeSessions'
          ? bodies.purgeSessions()
          : { name: `cleanup-${randomUUID()}`, type, cron: '0 4 * * *', payload: { olderThanDays: 90 } };
      expectProblem(await post(h.client(owner()), body), 'forbidden');
      const created = await post(h.client(owner(), { admin: true }), body);
      expect(created.response.status).toBe(201);
      expect(created.data).toMatchObject({ type, payload: body.payload });
    },
  );

  it.each([
    ['a 100-character name', { name: 'n'.repeat(100) }],
    ['timezone Asia/Kolkata', { timezone: 'Asia/Kolkata' }],
    ['a seconds field where allowed (default: 1 s minimum)', { cron: '*/5 * * * * *' }],
  ])('accepts %s', async (_label, fields) => {
    const created = await post(h.client(owner()), withField(fields)());
    expect(created.response.status).toBe(201);
    expect(created.data).toMatchObject(fields);
  });

  it('reports every bad field at once: cron, timezone and payload together', async () => {
    const res = await post(h.client(owner()), {
      ...bodies.sendEmail(),
      cron: '* * * *',
      timezone: 'Mars/Olympus',
      payload: { to: 'nope', template: 'plain', params: {} },
    });
    // The template picks the payload's variant, so its fields are checked with the rest.
    expectProblem(
      res,
      'invalid-request',
      at('cron', /5 fields/),
      at('timezone'),
      at('payload.to'),
      at('payload.subject'),
      at('payload.params.body', /needs param "body"/),
    );
  });
});

describe.each([
  {
    env: { CRON_ALLOW_SECONDS: 'false', CRON_MIN_INTERVAL_SECONDS: '60' },
    ok: ['* * * * *', '0 8 * * 1-5'],
    refused: [
      ['0 * * * * *', /seconds field/],
      ['*/30 * * * * *', /seconds field/],
    ],
  },
  {
    env: { CRON_ALLOW_SECONDS: 'true', CRON_MIN_INTERVAL_SECONDS: '60' },
    ok: ['0 * * * * *', '* * * * *'],
    refused: [
      ['*/30 * * * * *', /every 30 s.*minimum interval is 60 s/],
      ['0,30 * * * * *', /every 30 s/],
    ],
  },
  {
    env: { CRON_ALLOW_SECONDS: 'true', CRON_MIN_INTERVAL_SECONDS: '120' },
    ok: ['*/2 * * * *', '0 0,23 * * *'],
    refused: [
      ['* * * * *', /every 60 s.*minimum interval is 120 s/],
      ['0,1 * * * *', /every 60 s/],
      ['0,59 * * * *', /every 60 s/],
    ],
  },
] as { env: Record<string, string>; ok: string[]; refused: [string, RegExp][] }[])(
  'cron limits with $env',
  ({ env, ok, refused }) => {
    let strict: Harness;
    beforeAll(async () => {
      strict = await startHarness({ env });
    });
    afterAll(() => strict.stop());

    it.each(ok)('accepts "%s"', async (cron) => {
      const created = await post(strict.client(owner()), withField({ cron })());
      expect(created.response.status).toBe(201);
      expect(created.data!.cron).toBe(cron);
    });
    it.each(refused)('refuses "%s"', async (cron, message) => {
      const problem = expectProblem(
        await post(strict.client(owner()), withField({ cron })()),
        'invalid-request',
        at('cron', message),
      );
      expect(problem.detail).toMatch(message);
    });
  },
);

describe('malformed requests', () => {
  it.each(['{"name":', '', 'null', '[]', '"a string"'])('answers 400 for the JSON body %j', async (body) => {
    expectProblem(
      await raw('POST', '/api/cron/jobs', '/api/cron/jobs', { body, contentType: 'application/json' }),
      'invalid-request',
      at(''),
    );
  });

  it.each([
    ['text/plain', 'text/plain'],
    ['a form', 'application/x-www-form-urlencoded'],
    ['application/json-seq', 'application/json-seq'],
    ['no Content-Type at all', undefined],
  ])('answers 415 for a body sent as %s', async (_label, contentType) => {
    const body = new TextEncoder().encode(JSON.stringify(bodies.sendEmail()));
    expectProblem(
      await raw('POST', '/api/cron/jobs', '/api/cron/jobs', { body, ...(contentType ? { contentType } : {}) }),
      'unsupported-media-type',
    );
  });

  it('names the Content-Type header in the 415', async () => {
    const res = await raw('PATCH', '/api/cron/jobs/{id}', `/api/cron/jobs/${'a'.repeat(24)}`, {
      body: '{}',
      contentType: 'text/plain',
    });
    expectProblem(res, 'unsupported-media-type', { in: 'header', path: 'Content-Type', message: /text\/plain/ });
  });

  it('answers 413 for a body over 64 KiB, with or without Content-Length', async () => {
    const big = JSON.stringify({ ...bodies.sendEmail(), padding: 'x'.repeat(70 * 1024) });
    expectProblem(
      await raw('POST', '/api/cron/jobs', '/api/cron/jobs', { body: big, contentType: 'application/json' }),
      'payload-too-large',
    );
    // A stream is sent chunked, without Content-Length: the limit must hold while reading.
    const chunked = new ReadableStream({
      start(c) {
        for (let i = 0; i < big.length; i += 9000) c.enqueue(new TextEncoder().encode(big.slice(i, i + 9000)));
        c.close();
      },
    });
    expectProblem(
      await raw('POST', '/api/cron/jobs', '/api/cron/jobs', { body: chunked, contentType: 'application/json' }),
      'payload-too-large',
    );
  });

  it.each([
    ['GET', '/nope'],
    ['GET', '/api/cron/nope'],
    ['DELETE', '/api/cron/jobs/x/y'],
  ])('answers 404 problem+json for %s %s', async (method, url) => {
    const res = await raw(method, null, url);
    expectProblem(res, 'not-found');
    expect((res.error as Problem).instance).toBe(url);
  });

  it.each([
    ['DELETE', '/api/cron/jobs', 'GET, HEAD, POST'],
    ['POST', '/api/cron/jobs/6650f1c2a8b4e9d2c4a1b2c3', 'DELETE, GET, HEAD, PATCH, PUT'],
    ['PUT', '/healthz', 'GET, HEAD'],
  ])(
    'answers 405 problem+json with Allow for %s %s (the path exists, the method does not)',
    async (method, url, allow) => {
      const response = await fetch(`${h.baseUrl}${url}`, {
        method,
        headers: { Authorization: `Bearer ${await h.token('someone')}` },
      });
      expect(response.status).toBe(405);
      expect(response.headers.get('Allow')).toBe(allow);
      expect(response.headers.get('Content-Type')).toMatch(/^application\/problem\+json/);
      expect(await response.json()).toMatchObject({ type: '/problems/method-not-allowed', status: 405, instance: url });
    },
  );
});

describe('path and query parameters', () => {
  const bad = 'nope';
  it.each([
    ['GET', (api: CronClient) => api.GET('/api/cron/jobs/{id}', { params: { path: { id: bad } } })],
    [
      'PUT',
      (api: CronClient) => api.PUT('/api/cron/jobs/{id}', { params: { path: { id: bad } }, body: bodies.sendEmail() }),
    ],
    [
      'PATCH',
      (api: CronClient) =>
        api.PATCH('/api/cron/jobs/{id}', { params: { path: { id: bad } }, body: { enabled: false } }),
    ],
    ['DELETE', (api: CronClient) => api.DELETE('/api/cron/jobs/{id}', { params: { path: { id: bad } } })],
    ['run-now', (api: CronClient) => api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: bad } } })],
    ['runs', (api: CronClient) => api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id: bad } } })],
  ])('%s with the malformed id "nope" answers 404, like any id that is not one of your jobs', async (_op, call) => {
    expectProblem(await call(h.client(owner())), 'not-found');
  });

  const queries: [Record<string, unknown>, string][] = [
    [{ limit: 0 }, 'limit'],
    [{ limit: 101 }, 'limit'],
    [{ limit: 'abc' }, 'limit'],
    [{ cursor: 'zzz' }, 'cursor'],
    [{ enabled: 'yes' }, 'enabled'],
    [{ type: 'backupDatabase' }, 'type'],
    [{ ownerId: '' }, 'ownerId'],
    [{ sort: 'name' }, 'sort'],
  ];
  it.each(queries)('the list query %j answers 400 at %j', async (query, path) => {
    const res = await h.client(owner()).GET('/api/cron/jobs', { params: { query: query as never } });
    expectProblem(res, 'invalid-request', { in: 'query', path });
  });

  it.each(queries.filter(([q]) => 'limit' in q || 'cursor' in q || 'sort' in q))(
    'the runs query %j answers 400 at %j',
    async (query, path) => {
      const api = h.client(owner());
      const { data: job } = await post(api, bodies.sendEmail());
      expectProblem(
        await api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id: job!.id }, query: query as never } }),
        'invalid-request',
        { in: 'query', path },
      );
    },
  );
});

describe('PATCH and PUT keep the job unchanged when refused', () => {
  async function withJob(run: (api: CronClient, job: CronJob) => Promise<Answer>, ...where: Where[]) {
    const api = h.client(owner());
    const { data: job } = await post(api, bodies.sendEmail());
    const before = (await getJob(api, job!.id)).data!;
    expectProblem(await run(api, before), 'invalid-request', ...where);
    expect((await getJob(api, job!.id)).data).toEqual(before);
  }
  const patch = (body: object) => (api: CronClient, job: CronJob) =>
    api.PATCH('/api/cron/jobs/{id}', { params: { path: { id: job.id } }, body: body as CronJobPatch });
  const put = (body: object) => (api: CronClient, job: CronJob) =>
    api.PUT('/api/cron/jobs/{id}', { params: { path: { id: job.id } }, body: body as CronJobInput });
  const mail = bodies.sendEmail().payload;

  it.each([
    ['a payload invalid for the existing type', patch({ payload: { ...mail, to: 'nobody' } }), at('payload.to')],
    [
      'a template missing its param',
      patch({ payload: { ...mail, template: 'reminder', params: {} } }),
      at('payload.params.title', /title/),
    ],
    ['a type change without a payload for it', patch({ type: 'generateReport' }), at('payload.period')],
    ['an unknown type', patch({ type: 'backupDatabase' }), at('type')],
    ['an unknown field', patch({ colour: 'blue' }), at('colour', /unknown field/)],
    ['an invalid cron', patch({ cron: '61 * * * *' }), at('cron')],
    ['an invalid timezone', patch({ timezone: 'Mars/Olympus' }), at('timezone')],
    ['a blank name', patch({ name: '  ' }), at('name')],
  ])('PATCH with %s answers 400', async (_label, run, where) => withJob(run, where));

  it.each([
    ['a macro cron', put({ ...bodies.sendEmail(), cron: '@daily' }), at('cron')],
    [
      'a payload of another type',
      put({ ...bodies.generateReport(), payload: mail }),
      at('payload.to', /unknown field/),
    ],
    ['a missing payload', put({ ...bodies.sendEmail(), payload: undefined }), at('payload')],
    ['an unknown field', put({ ...bodies.sendEmail(), colour: 'blue' }), at('colour', /unknown field/)],
  ])('PUT with %s answers 400', async (_label, run, where) => withJob(run, where));

  it('a type change with a valid payload for the new type is accepted', async () => {
    const api = h.client(owner());
    const { data: job } = await post(api, bodies.sendEmail());
    const changed = await api.PATCH('/api/cron/jobs/{id}', {
      params: { path: { id: job!.id } },
      body: { type: 'generateReport', payload: { type: 'runs', period: 'day' } },
    });
    expect(changed.response.status).toBe(200);
    expect(changed.data).toMatchObject({ type: 'generateReport', payload: { type: 'runs', period: 'day' } });
  });
});
