import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// Security headers, CORS from configuration, request ids in problems and log lines, and what
// the log must never hold, against the real service.

const ALLOWED = 'https://app.example.com';
const lines: string[] = [];
let h: Harness;

beforeAll(async () => {
  h = await startHarness({
    env: { CORS_ORIGINS: `${ALLOWED}, http://localhost:5173`, LOG_LEVEL: 'debug' },
    logDestination: { write: (line: string) => void lines.push(line) },
  });
});
afterAll(() => h?.stop());

const logged = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

describe('security headers', () => {
  it.each([
    ['a JSON answer', '/healthz'],
    ['a problem', '/api/cron/jobs'],
    ['the spec', '/openapi.json'],
  ])('are on %s, with a CSP that allows nothing', async (_label, path) => {
    const response = await fetch(`${h.baseUrl}${path}`);
    expect(response.headers.get('Content-Security-Policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(response.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(response.headers.get('X-Frame-Options')).toBe('SAMEORIGIN');
    expect(response.headers.get('Strict-Transport-Security')).toMatch(/max-age=\d+/);
    expect(response.headers.get('Referrer-Policy')).toBe('no-referrer');
    expect(response.headers.get('Cross-Origin-Resource-Policy')).toBe('same-origin');
    expect(response.headers.get('X-Powered-By')).toBeNull();
  });

  it('the reference page may load only from this server, and cannot be framed', async () => {
    const response = await fetch(`${h.baseUrl}/reference`);
    expect(response.status).toBe(200);
    const csp = response.headers.get('Content-Security-Policy')!;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/https?:|\*/);
  });
});

describe('CORS allowlist (CORS_ORIGINS)', () => {
  it('answers a preflight from an allowed origin, for the bearer header', async () => {
    const response = await fetch(`${h.baseUrl}/api/cron/jobs`, {
      method: 'OPTIONS',
      headers: {
        Origin: ALLOWED,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type',
      },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('Access-Control-Allow-Origin')).toBe(ALLOWED);
    expect(response.headers.get('Access-Control-Allow-Headers')).toMatch(/Authorization/);
    expect(response.headers.get('Access-Control-Allow-Headers')).toMatch(/If-Match/);
    expect(response.headers.get('Access-Control-Allow-Headers')).toMatch(/Idempotency-Key/);
    expect(response.headers.get('Access-Control-Allow-Methods')).toMatch(/POST/);
    expect(response.headers.get('Access-Control-Allow-Credentials')).toBeNull();
  });

  it('lets an allowed origin read answers and the request id', async () => {
    const response = await fetch(`${h.baseUrl}/api/cron/jobs`, {
      headers: { Origin: 'http://localhost:5173', Authorization: `Bearer ${await h.token('cors-user')}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('Access-Control-Allow-Origin')).toBe('http://localhost:5173');
    // Everything a browser client needs to read: ids, versions, limits, replays.
    const exposed = (response.headers.get('Access-Control-Expose-Headers') ?? '').toLowerCase().split(/\s*,\s*/);
    for (const header of [
      'x-request-id',
      'etag',
      'location',
      'retry-after',
      'ratelimit',
      'ratelimit-policy',
      'idempotent-replayed',
    ])
      expect(exposed).toContain(header);
  });

  it('gives another origin no CORS grant, on a preflight or a request', async () => {
    const preflight = await fetch(`${h.baseUrl}/api/cron/jobs`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'DELETE' },
    });
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBeNull();
    const request = await fetch(`${h.baseUrl}/healthz`, { headers: { Origin: 'https://evil.example' } });
    expect(request.headers.get('Access-Control-Allow-Origin')).toBeNull();
  });
});

describe('request ids and the log', () => {
  it('every problem carries the request id of its X-Request-Id header, and every log line of the requests has it', async () => {
    const token = await h.token('log-user');
    const forged = `${token.slice(0, -4)}AAAA`;
    lines.length = 0;
    const requests: [string, RequestInit][] = [
      ['/api/cron/jobs', { headers: { Authorization: `Bearer ${forged}` } }],
      [
        '/api/cron/jobs',
        {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: '{"name":""}',
        },
      ],
      ['/api/cron/jobs/6650f1c2a8b4e9d2c4a1b2c3', { headers: { Authorization: `Bearer ${token}` } }],
      ['/nowhere', {}],
      [
        '/api/cron/jobs',
        {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
          body: '{"name":',
        },
      ],
    ];
    const ids: string[] = [];
    for (const [path, init] of requests) {
      const response = await fetch(`${h.baseUrl}${path}`, init);
      expect(response.status).toBeGreaterThanOrEqual(400);
      const id = response.headers.get('X-Request-Id')!;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(await response.json()).toMatchObject({ requestId: id });
      ids.push(id);
    }
    const ok = await fetch(`${h.baseUrl}/api/cron/jobs`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(bodies.sendEmail()),
    });
    expect(ok.status).toBe(201);
    ids.push(ok.headers.get('X-Request-Id')!);

    const entries = logged();
    expect(entries.length).toBeGreaterThanOrEqual(ids.length);
    for (const entry of entries) expect(entry, JSON.stringify(entry)).toHaveProperty('requestId', expect.any(String));
    expect(new Set(entries.map((e) => e.requestId))).toEqual(new Set(ids));
    // Neither the token nor the forged one reach the log, in any field.
    expect(lines.join('\n')).not.toContain(token.split('.')[2]);
    expect(lines.join('\n')).not.toContain('AAAA');
  });

  it("keeps a well-formed X-Request-Id from the caller (a gateway's), and replaces one that is not", async () => {
    const mine = await fetch(`${h.baseUrl}/nowhere`, { headers: { 'X-Request-Id': 'gateway-1234' } });
    expect(mine.headers.get('X-Request-Id')).toBe('gateway-1234');
    expect(await mine.json()).toMatchObject({ requestId: 'gateway-1234' });
    const bad = await fetch(`${h.baseUrl}/nowhere`, { headers: { 'X-Request-Id': 'has spaces {and} "quotes"' } });
    expect(bad.headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
