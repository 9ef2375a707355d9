import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain Node script (.mjs), no type declarations
import { ensurePythonTools, generate, runSample, typeCheck } from '../scripts/python-client.mjs';
import { type Freezable, startFreezable } from './helpers/freezable.js';
import type { Harness } from './helpers/harness.js';

// A partner's Python client: generated from openapi/openapi.json by openapi-python-client (pinned,
// installed into .local/venv on first use), type-checked with mypy --strict together with a sample
// that uses it (tests/fixtures/python_client_sample.py), and run against the service: create, list
// and delete, then a rate limit and a frozen database, each answer a typed value.

let f: Freezable;
let h: Harness;

beforeAll(async () => {
  ensurePythonTools();
  f = await startFreezable('python-client', { RATE_LIMIT_PER_USER: '20' });
  h = f.h;
}, 300_000);
afterAll(() => f.stop());

const sample = async (sub: string, mode: string) =>
  JSON.parse(await runSample(h.baseUrl, await h.token(sub), { MODE: mode }));

describe('the Python client a partner generates', () => {
  it('generates, passes mypy --strict with the sample, and handles every answer as a typed value', async () => {
    generate();
    expect(typeCheck()).toMatch(/^Success: no issues found/m);

    const crud = await sample('python-partner', 'crud');
    expect(crud).toMatchObject({
      listed: ['Python weekly report'],
      duplicate: [409, '/problems/conflict'],
      deleted: 204,
      gone: [404, '/problems/not-found'],
    });
    expect(crud.created).toMatch(/^[0-9a-f]{24}$/);

    const limit = await sample('python-limited', 'limit');
    expect(limit).toMatchObject({ limited: [true, '/problems/rate-limited'] });
    expect(limit.retryAfter).toBeGreaterThan(0);

    f.freeze();
    const outage = await sample('python-outage', 'outage');
    f.thaw();
    expect(outage, JSON.stringify(outage)).toMatchObject({
      outage: [true, true],
      outageAnswer: [503, '/problems/unavailable', expect.any(String)],
      catalogOutage: true,
    });
  }, 300_000);
});
