import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertMatchesSpec } from './helpers/contract.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// Regression tests for what Schemathesis found: each case pins the service's answer AND that
// the spec says the same (valid per the spec <=> accepted), so they cannot drift apart again.

const spec = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
const ajv = new Ajv2020({ strict: false });
const schemaAt = (pointer: string) =>
  ajv.compile({ ...pointer.split('/').reduce((o, k) => o[k], spec), components: spec.components });

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

async function call(
  method: string,
  path: string,
  init: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = {
    Authorization: `Bearer ${await h.token('findings', { admin: true })}`,
    ...init.headers,
  };
  if (init.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${h.baseUrl}${path}`, {
    method,
    headers,
    body: init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body)),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, response };
}

describe('request bodies: the spec and the service agree', () => {
  const input = schemaAt('components/schemas/CronJobInput');

  it.each([
    ['a blank name', { name: '   ' }, false],
    ['a 100-character name with a trailing space (checked before trimming)', { name: `${'n'.repeat(100)} ` }, false],
    ['a name with spaces around it, trimmed when stored', { name: '  padded  ' }, true],
    [
      'an email whose local part is 65 characters (RFC 5321: 64)',
      { payload: { ...bodies.sendEmail().payload, to: `${'a'.repeat(65)}@example.com` } },
      false,
    ],
    [
      'an email whose local part is 64 characters',
      { payload: { ...bodies.sendEmail().payload, to: `${'a'.repeat(64)}@example.com` } },
      true,
    ],
    [
      'a param named with a non-ASCII letter',
      { payload: { ...bodies.sendEmail().payload, params: { count: 1, zähler: 2 } } },
      false,
    ],
    [
      'the plain template without its body param',
      { payload: { ...bodies.sendEmail().payload, template: 'plain', params: {} } },
      false,
    ],
    [
      'the plain template with its body param',
      { payload: { ...bodies.sendEmail().payload, template: 'plain', params: { body: 'hi' } } },
      true,
    ],
  ])('%s: valid per the spec = %s, and so answered', async (_label, change, valid) => {
    const body = { ...bodies.sendEmail(), ...change };
    expect(input(body)).toBe(valid);
    const { status, body: answer, response } = await call('POST', '/api/cron/jobs', { body });
    assertMatchesSpec('/api/cron/jobs', 'POST', status, response.headers.get('Content-Type'), answer);
    expect(status).toBe(valid ? 201 : 400);
    if (valid && 'name' in change) expect(answer.name).toBe(String(change.name).trim());
  });

  it('a PATCH without any body is 415, not a successful no-op', async () => {
    const created = await call('POST', '/api/cron/jobs', { body: bodies.generateReport() });
    const { status, body } = await call('PATCH', `/api/cron/jobs/${created.body.id}`);
    expect(status).toBe(415);
    expect(body.errors).toEqual([{ in: 'header', path: 'Content-Type', message: 'missing' }]);
  });
});

describe('headers and query parameters: the spec and the service agree', () => {
  const key = spec.paths['/api/cron/jobs'].post.parameters.find(
    (p: { name: string }) => p.name === 'idempotency-key',
  ).schema;
  const keyValid = ajv.compile(key);

  it.each([
    ['a UUID', '8e03978e-40d5-43e8-bc93-6894a57f9324', true],
    ['a quoted sf-string', '"order-17"', true],
    ['an empty quoted string', '""', false],
    ['a non-ASCII key', 'schlüssel', false],
  ])('Idempotency-Key %s: valid per the spec = %s, and so answered', async (_label, value, valid) => {
    expect(keyValid(value)).toBe(valid);
    // Header values travel as bytes; a non-ASCII one goes as UTF-8, as a client would send it.
    const headers = { 'Idempotency-Key': Buffer.from(value, 'utf8').toString('latin1') };
    const { status } = await call('POST', '/api/cron/jobs', { body: bodies.generateReport(), headers });
    expect(status).toBe(valid ? 201 : 400);
  });

  const from = ajv.compile(
    spec.paths['/api/cron/preview'].get.parameters.find((p: { name: string }) => p.name === 'from').schema,
  );

  it.each([
    ['the last hour of 2199 west of UTC (an instant in 2200)', '2199-12-31T23:30:00-01:00', true],
    ['the first hour of 1970 east of UTC (an instant in 1969)', '1970-01-01T00:00:00+01:00', true],
    ['a leap day', '2096-02-29T12:00:00Z', true],
    ['2100-02-29 (no leap day)', '2100-02-29T12:00:00Z', false],
    ['a year after 2199', '2200-01-01T00:00:00Z', false],
    ['an offset without a colon', '2026-03-28T00:00:00+0100', false],
  ])('preview from = %s: valid per the spec = %s, and so answered', async (_label, value, valid) => {
    expect(from(value)).toBe(valid);
    const { status, body, response } = await call(
      'GET',
      `/api/cron/preview?cron=${encodeURIComponent('0 8 * * *')}&from=${encodeURIComponent(value)}`,
    );
    assertMatchesSpec('/api/cron/preview', 'GET', status, response.headers.get('Content-Type'), body);
    expect(status).toBe(valid ? 200 : 400);
  });
});
