import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertMatchesSpec, documentedHeaders } from './helpers/contract.js';
import { type Freezable, startFreezable } from './helpers/freezable.js';
import { bodies, type Harness } from './helpers/harness.js';

// Every answer a route gives, in ordinary use, when rate limited and with the database frozen,
// has its status and its headers documented on that operation in openapi/openapi.json, and its
// body matches the schema documented for that status.

// A database of this file's own, so freezing it stalls nobody else's tests (as in outage.test.ts).
const USER_LIMIT = 60;
let f: Freezable;
let h: Harness;

beforeAll(async () => {
  f = await startFreezable('documented-answers', {
    RATE_LIMIT_PER_USER: String(USER_LIMIT),
    RATE_LIMIT_RUN_NOW_PER_USER: '3',
    // Browsers of this origin get CORS headers: they must be documented too.
    CORS_ORIGINS: 'https://app.example.com',
  });
  h = f.h;
});
afterAll(() => f.stop());

const LIMITED_OPERATIONS = [
  ['get', '/api/cron/job-types'],
  ['get', '/api/cron/jobs'],
  ['post', '/api/cron/jobs'],
  ['get', '/api/cron/jobs/{id}'],
  ['put', '/api/cron/jobs/{id}'],
  ['patch', '/api/cron/jobs/{id}'],
  ['delete', '/api/cron/jobs/{id}'],
  ['post', '/api/cron/jobs/{id}/run-now'],
  ['get', '/api/cron/jobs/{id}/runs'],
  ['get', '/api/cron/preview'],
] as const;

/** Headers of the transport and of the app-wide security policy: the same on every answer, not per operation. */
const TRANSPORT = new Set([
  'content-type',
  'content-length',
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'vary',
  'cache-control',
  'content-security-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
  'access-control-expose-headers',
  'access-control-allow-credentials',
]);

interface Answer {
  operation: string;
  status: number;
  undocumented: string[];
}
const answers: Answer[] = [];

/** Sends one request to an operation (path as in the spec) and records what came back. */
async function send(
  method: string,
  specPath: string,
  o: {
    path?: Record<string, string>;
    query?: string;
    body?: unknown;
    token?: string;
    headers?: Record<string, string>;
  },
) {
  const url = specPath.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(o.path?.[name] ?? ''));
  // A connection per request: after some refusals (a 412 to a PUT) the next request on the same
  // keep-alive connection got Node's bare 400 with no body, which is the transport's, not a route's.
  const payload = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  const res = await new Promise<{ status: number; headers: Headers; text: string }>((resolve, reject) => {
    const req = request(
      `${h.baseUrl}${url}${o.query ? `?${o.query}` : ''}`,
      {
        method: method.toUpperCase(),
        agent: false,
        headers: {
          Origin: 'https://app.example.com',
          ...(o.token ? { Authorization: `Bearer ${o.token}` } : {}),
          ...(payload === undefined ? {} : { 'Content-Type': 'application/json' }),
          ...o.headers,
        },
      },
      (incoming) => {
        let text = '';
        incoming.setEncoding('utf8');
        incoming.on('data', (chunk: string) => {
          text += chunk;
        });
        incoming.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(incoming.headers)) headers.set(name, String(value));
          resolve({ status: incoming.statusCode!, headers, text });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
  const text = res.text;
  // A documented status with a body of its documented schema (throws naming the operation).
  assertMatchesSpec(specPath, method, res.status, res.headers.get('content-type'), text ? JSON.parse(text) : undefined);
  const declared = documentedHeaders(specPath, method, res.status).map((name) => name.toLowerCase());
  const undocumented = [...res.headers.keys()].filter((name) => !TRANSPORT.has(name) && !declared.includes(name));
  answers.push({ operation: `${method.toUpperCase()} ${specPath}`, status: res.status, undocumented });
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

describe('every answer is documented', () => {
  it('ordinary traffic, bad input, rate limits and a frozen database', async () => {
    const alice = await h.token('alice');
    const created = await send('post', '/api/cron/jobs', { token: alice, body: bodies.generateReport('weekly') });
    expect(created.status).toBe(201);
    const { id } = (await send('get', '/api/cron/jobs', { token: alice })).body.items[0];
    const etag = (await send('get', '/api/cron/jobs/{id}', { token: alice, path: { id } })).headers.get('etag')!;

    // Successes, and the typical refusals of each operation.
    await send('get', '/healthz', {});
    await send('get', '/readyz', {});
    await send('get', '/problems/{code}', { path: { code: 'conflict' } });
    await send('get', '/problems/{code}', { path: { code: 'teapot' } });
    await send('get', '/api/cron/job-types', { token: alice });
    await send('get', '/api/cron/job-types', {});
    await send('get', '/api/cron/jobs', { token: alice, query: 'limit=0' });
    await send('get', '/api/cron/jobs', { token: alice, query: 'ownerId=bob' });
    await send('post', '/api/cron/jobs', { token: alice, body: bodies.generateReport('weekly') });
    await send('post', '/api/cron/jobs', { token: alice, body: { ...bodies.purgeSessions() } });
    await send('post', '/api/cron/jobs', {
      token: alice,
      body: {
        ...bodies.sendEmail(),
        payload: { to: 'x@other.org', subject: 's', template: 'digest', params: { count: 1 } },
      },
    });
    // A body with more faults than a problem lists: the first 100, within the documented maxItems.
    const unknown = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`field${i}`, i]));
    const many = await send('post', '/api/cron/jobs', {
      token: alice,
      body: { ...bodies.generateReport(), ...unknown },
    });
    expect(many.body.errors).toHaveLength(100);
    await send('post', '/api/cron/jobs', { token: alice, body: '{"name":' });
    await send('post', '/api/cron/jobs', { token: alice, body: 'x', headers: { 'Content-Type': 'text/plain' } });
    await send('post', '/api/cron/jobs', { token: alice, body: { name: 'x'.repeat(70_000) } });
    const key = { 'Idempotency-Key': 'documented-answers-1' };
    await send('post', '/api/cron/jobs', { token: alice, body: bodies.generateReport('keyed'), headers: key });
    await send('post', '/api/cron/jobs', { token: alice, body: bodies.generateReport('keyed'), headers: key });
    await send('post', '/api/cron/jobs', { token: alice, body: bodies.generateReport('other'), headers: key });
    await send('get', '/api/cron/jobs/{id}', { token: alice, path: { id: '0123456789abcdef01234567' } });
    await send('get', '/api/cron/jobs/{id}', { token: alice, path: { id: 'x'.repeat(101) } });
    await send('put', '/api/cron/jobs/{id}', {
      token: alice,
      path: { id },
      body: bodies.generateReport('weekly'),
      headers: { 'If-Match': etag },
    });
    await send('put', '/api/cron/jobs/{id}', {
      token: alice,
      path: { id },
      body: bodies.generateReport('weekly'),
      headers: { 'If-Match': '"stale"' },
    });
    await send('patch', '/api/cron/jobs/{id}', { token: alice, path: { id }, body: { enabled: false } });
    await send('patch', '/api/cron/jobs/{id}', { token: alice, path: { id }, body: { ownerId: 'bob' } });
    await send('get', '/api/cron/jobs/{id}/runs', { token: alice, path: { id } });
    await send('get', '/api/cron/jobs/{id}/runs', { token: alice, path: { id }, query: 'cursor=nope' });
    await send('get', '/api/cron/preview', { token: alice, query: 'cron=30%202%20*%20*%20*&timezone=Europe/Berlin' });
    await send('get', '/api/cron/preview', { token: alice, query: 'cron=nope' });
    for (let i = 0; i < 4; i++) await send('post', '/api/cron/jobs/{id}/run-now', { token: alice, path: { id } });
    await send('delete', '/api/cron/jobs/{id}', { token: alice, path: { id: '0123456789abcdef01234567' } });

    // Rate limited: the user's quota runs out on whatever operation comes next.
    const bob = await h.token('bob');
    let limited = 0;
    for (let i = 0; i <= USER_LIMIT && limited === 0; i++) {
      const res = await send('get', i % 2 ? '/api/cron/job-types' : '/api/cron/jobs', { token: bob });
      if (res.status === 429) limited++;
    }
    expect(limited).toBe(1);
    /** One valid-looking request to each of these operations, each expected to get `expected`. */
    const each = (operations: readonly (typeof LIMITED_OPERATIONS)[number][], token: string, expected: number) =>
      Promise.all(
        operations.map(async ([method, path]) => {
          const res = await send(method, path, {
            token,
            path: { id },
            body: method === 'post' || method === 'put' || method === 'patch' ? bodies.generateReport() : undefined,
            query: path.endsWith('preview') ? 'cron=0%208%20*%20*%20*' : undefined,
          });
          expect(res.status, `${method} ${path}`).toBe(expected);
        }),
      );
    await each(LIMITED_OPERATIONS, bob, 429);

    // The database frozen: every operation that reads it answers 503, and /readyz too. (The catalog
    // and the preview read none, and the rate limits are counted in memory: they answer as usual.)
    f.freeze();
    const readsDatabase = LIMITED_OPERATIONS.filter(([, path]) => !/job-types|preview/.test(path));
    await each(readsDatabase, await h.token('carol'), 503);
    await each([['get', '/api/cron/job-types']], await h.token('carol'), 200);
    expect((await send('get', '/readyz', {})).status).toBe(503);
    f.thaw();

    const statuses = [...new Set(answers.map((a) => a.status))].sort();
    console.info(`${answers.length} answers, statuses ${statuses.join(' ')}`);
    // The traffic did reach what it is meant to: successes, refusals, the limits and the outage.
    expect(statuses).toEqual(
      expect.arrayContaining([200, 201, 202, 400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503]),
    );
    expect(answers.filter((a) => a.undocumented.length)).toEqual([]);
  }, 120_000);
});
