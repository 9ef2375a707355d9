import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain Node script (.mjs), no type declarations
import { ensurePythonTools, generate, runSample, typeCheck } from '../scripts/python-client.mjs';
import { type LocalDb, startLocalDb } from '../src/lib/local-db.js';
import { type Harness, startHarness } from './helpers/harness.js';

// A partner's Python client: generated from openapi/openapi.json by openapi-python-client (pinned,
// installed into .local/venv on first use), type-checked with mypy --strict together with a sample
// that uses it (tests/fixtures/python_client_sample.py), and run against the service: create, list
// and delete, then a rate limit and a frozen database, each answer a typed value.

const dataDir = `.local/python-client-db-${process.pid}`;
let db: LocalDb;
let h: Harness;
let frozen = false;

beforeAll(async () => {
  ensurePythonTools();
  db = await startLocalDb(dataDir);
  h = await startHarness({
    uri: db.uri,
    env: {
      MONGODB_SOCKET_TIMEOUT_MS: '500',
      MONGODB_SERVER_SELECTION_TIMEOUT_MS: '500',
      RATE_LIMIT_PER_USER: '20',
    },
  });
}, 300_000);
afterAll(async () => {
  if (frozen) process.kill(db.pid, 'SIGCONT');
  await h.stop();
  await db.stop();
  await rm(dataDir, { recursive: true, force: true });
});

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

    process.kill(db.pid, 'SIGSTOP');
    frozen = true;
    const outage = await sample('python-outage', 'outage');
    process.kill(db.pid, 'SIGCONT');
    frozen = false;
    expect(outage).toEqual({ mode: 'outage', outage: [true, true], catalogOutage: 503 });
  }, 300_000);
});
