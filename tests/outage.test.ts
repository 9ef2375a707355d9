import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDb, startLocalDb } from '../src/db/index.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// A database of this file's own, so freezing it stalls nobody else's tests.
const dataDir = `.local/outage-db-${process.pid}`;
let db: LocalDb;
let h: Harness;
let frozen = false;

beforeAll(async () => {
  db = await startLocalDb(dataDir);
  h = await startHarness({
    uri: db.uri,
    env: { MONGODB_SOCKET_TIMEOUT_MS: '500', MONGODB_SERVER_SELECTION_TIMEOUT_MS: '500' },
  });
});
afterAll(async () => {
  if (frozen) process.kill(db.pid, 'SIGCONT');
  await h.stop();
  await db.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('a database that stops answering', () => {
  it('gets 503 problem+json from the API and /readyz, not a hang or a 500, and recovers by itself', async () => {
    const api = h.client('outage-user');
    const { data: job } = await api.POST('/api/cron/jobs', { body: bodies.sendEmail() });

    // SIGSTOP: the process keeps its socket open but answers nothing, the worst kind of outage.
    process.kill(db.pid, 'SIGSTOP');
    frozen = true;
    const list = await api.GET('/api/cron/jobs');
    expect(list.response.status).toBe(503);
    expect(list.response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(list.error).toMatchObject({ type: '/problems/unavailable', status: 503 });
    const create = await api.POST('/api/cron/jobs', { body: bodies.sendEmail() });
    expect(create.response.status).toBe(503);
    // The catalog reads no database, and rate limits are counted in memory first (published in
    // batches): it answers as usual, limits and their headers included.
    const types = await api.GET('/api/cron/job-types');
    expect(types.response.status).toBe(200);
    expect(types.response.headers.get('RateLimit')).toMatch(/"user";r=\d+;t=\d+/);
    const ready = await fetch(`${h.baseUrl}/readyz`);
    expect(ready.status).toBe(503);
    expect((await fetch(`${h.baseUrl}/healthz`)).status).toBe(200);

    process.kill(db.pid, 'SIGCONT');
    frozen = false;
    // No restart: the same service answers again once the database does.
    const again = await api.GET('/api/cron/jobs/{id}', { params: { path: { id: job!.id } } });
    expect(again.response.status).toBe(200);
    expect((await fetch(`${h.baseUrl}/readyz`)).status).toBe(200);

    // Both 503s of the API are counted as database errors in /metrics.
    const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
    const apiErrors = Number(/^cron_db_errors_total\{source="api"\} (\d+)$/m.exec(metrics)?.[1]);
    expect(apiErrors).toBeGreaterThanOrEqual(2);
  });
});
