import { sign } from 'hono/jwt';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { parseEnv } from '../src/env.js';
import type { Guards } from '../src/lib/guards.js';
import { createLogger, scrub } from '../src/lib/logger.js';
import type { CronJobService } from '../src/scheduler/service.js';

// Unit tests of the app's error boundary and the logger: what a failure shows the caller
// (nothing of the failure) and what it leaves in the log (the details, without credentials).
// The service here is a stand-in that throws what the driver would; the real database paths
// (503 on an outage) are in outage.test.ts.

const config = parseEnv({ NODE_ENV: 'test', LOG_LEVEL: 'debug' });

function appThrowing(error: Error) {
  const lines: string[] = [];
  const logger = createLogger(config, { write: (line: string) => void lines.push(line) });
  const service = { list: async () => Promise.reject(error) } as unknown as CronJobService;
  // No rate limits: the routes under test never reach the database-backed guards.
  const guards = { rateLimits: { enabled: () => false }, trustProxyHops: 0 } as unknown as Guards;
  const app = createApp({ config, logger, service, guards, ready: async () => true });
  return { app, lines };
}

const driverError = (name: string, message: string) => Object.assign(new Error(message), { name });

async function listJobs(app: ReturnType<typeof createApp>) {
  const token = await sign({ sub: 'boundary', exp: Math.floor(Date.now() / 1000) + 60 }, config.JWT_SECRET!, 'HS256');
  const response = await app.request('/api/cron/jobs', { headers: { Authorization: `Bearer ${token}` } });
  return { response, text: await response.text(), token };
}

describe('error boundary', () => {
  it('a driver error is a 500 that names nothing of it; the log has it, under the request id', async () => {
    const error = driverError(
      'MongoServerError',
      'E11000 duplicate key error collection: cronjobs.cron_jobs index: owner_name dup key: { ownerId: "x" }',
    );
    const { app, lines } = appThrowing(error);
    const { response, text, token } = await listJobs(app);
    expect(response.status).toBe(500);
    const body = JSON.parse(text);
    expect(body).toEqual({
      type: '/problems/internal',
      title: 'Internal error',
      status: 500,
      detail: 'Something went wrong on our side.',
      instance: '/api/cron/jobs',
      requestId: response.headers.get('X-Request-Id'),
    });
    expect(text).not.toMatch(/E11000|Mongo|cron_jobs|\bat \S+:\d+/);

    const entries = lines.map((l) => JSON.parse(l));
    const logged = entries.find((e) => e.msg === 'unhandled error');
    expect(logged).toMatchObject({
      requestId: body.requestId,
      err: { message: expect.stringContaining('E11000'), stack: expect.stringContaining('at ') },
    });
    for (const entry of entries) expect(entry.requestId).toBe(body.requestId);
    expect(lines.join('\n')).not.toContain(token);
  });

  it('a lost database is a 503 without the connection string; the log has it with the password scrubbed', async () => {
    const { app, lines } = appThrowing(
      driverError('MongoNetworkError', 'connection 3 to mongodb://admin:hunter2@db.internal:27017/cronjobs closed'),
    );
    const { response, text } = await listJobs(app);
    expect(response.status).toBe(503);
    expect(text).not.toMatch(/mongodb:|hunter2|db\.internal|Mongo/);
    const log = lines.join('\n');
    expect(log).toContain('mongodb://[redacted]@db.internal');
    expect(log).not.toContain('hunter2');
  });

  it('an overloaded FerretDB (SQLite busy) is a 503 to retry, not a 500, and names nothing of it', async () => {
    const { app } = appThrowing(
      driverError(
        'MongoServerError',
        '[collection.go:177 sqlite.(*collection).UpdateAll.func1] database is locked (5) (SQLITE_BUSY)',
      ),
    );
    const { response, text } = await listJobs(app);
    expect(response.status).toBe(503);
    expect(JSON.parse(text)).toMatchObject({ type: '/problems/unavailable' });
    expect(text).not.toMatch(/sqlite|locked|collection\.go/i);
  });

  it('without CORS_ORIGINS no answer carries a CORS grant', async () => {
    const { app } = appThrowing(new Error('unused'));
    const response = await app.request('/healthz', { headers: { Origin: 'https://app.example.com' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('Access-Control-Allow-Origin')).toBeNull();
  });
});

describe('log redaction', () => {
  it('replaces credential fields wherever they sit, and scrubs tokens and URL passwords from text', () => {
    const lines: string[] = [];
    const logger = createLogger(config, { write: (line: string) => void lines.push(line) });
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    logger.info(
      {
        authorization: `Bearer ${jwt}`,
        headers: { cookie: 'sid=1', Authorization: 'Bearer y' },
        config: { SMTP_URL: 'smtp://u:pw@mail', JWT_SECRET: 'x'.repeat(32) },
        token: 't',
      },
      `verifying ${jwt} for smtp://mailer:s3cret@mail.example.com`,
    );
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      authorization: '[redacted]',
      headers: { cookie: '[redacted]', Authorization: '[redacted]' },
      config: { SMTP_URL: '[redacted]', JWT_SECRET: '[redacted]' },
      token: '[redacted]',
      msg: 'verifying [redacted-token] for smtp://[redacted]@mail.example.com',
    });
    expect(lines[0]).not.toMatch(/s3cret|c2lnbmF0dXJl|pw@/);
  });

  it.each([
    ['a bare JWT', 'token eyJa.eyJb.sig-_1 end', 'token [redacted-token] end'],
    ['a URL with user and password', 'mongodb://u:p%40ss@h:1/db', 'mongodb://[redacted]@h:1/db'],
    ['a URL with a user only', 'smtps://apikey@smtp.example.com', 'smtps://[redacted]@smtp.example.com'],
    ['an email address (kept)', 'sent to alice@example.com', 'sent to alice@example.com'],
    ['a URL without credentials (kept)', 'http://127.0.0.1:3000/api', 'http://127.0.0.1:3000/api'],
  ])('scrub: %s', (_label, input, output) => {
    expect(scrub(input)).toBe(output);
  });
});
