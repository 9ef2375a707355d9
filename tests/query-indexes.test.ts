import { randomUUID } from 'node:crypto';
import type { CommandStartedEvent } from 'mongodb';
import type { Connection } from 'mongoose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectDb } from '../src/db/index.js';
import { IDEMPOTENCY_COLLECTION, IdempotencyStore } from '../src/lib/idempotency.js';
import { RATE_LIMIT_COLLECTION, RATE_LIMIT_EXPIRY_FIELD } from '../src/lib/rate-limit.js';
import { DELETED_JOBS_COLLECTION } from '../src/models/index.js';
import { AGENDA_COLLECTION, AGENDA_INDEXES } from '../src/scheduler/agenda.js';
import { openScheduler, type Scheduler } from '../src/scheduler/index.js';
import { RETENTION_COLLECTION, sweepHistory } from '../src/scheduler/retention.js';
import { bodies, type Harness, startHarness, waitFor } from './helpers/harness.js';
import { type IndexKey, queriesOf, type RecordedQuery, unservedQuery } from './helpers/index-rule.js';

// Every query the service sends, recorded through the driver's command monitoring during a run of
// everything it does, must be one MongoDB serves from an index the code declares (the check
// `notablescan` makes; tests/helpers/index-rule.ts). Judged on the commands, not on a plan, so it
// holds on the local FerretDB too, which plans nothing.

/** The shared server's address with command monitoring on (a driver option the URI can carry). */
const monitored = (uri: string) => `${uri}${uri.includes('?') ? '&' : '?'}monitorCommands=true`;

/** The indexes the code declares, by collection (`_id` is implied). */
function declaredIndexes(scheduler: Scheduler, conn: Connection, h: Harness): Map<string, IndexKey[]> {
  const declared = new Map<string, IndexKey[]>();
  for (const model of Object.values(scheduler.models))
    declared.set(
      model.collection.collectionName,
      model.schema.indexes().map(([key]) => key as IndexKey),
    );
  declared.set(
    AGENDA_COLLECTION,
    AGENDA_INDEXES.map((i) => i.key as IndexKey),
  );
  // The expiry indexes (TTL on MongoDB; FerretDB has none and sweeps by the same field).
  declared.set(RATE_LIMIT_COLLECTION, [{ [RATE_LIMIT_EXPIRY_FIELD]: 1 }]);
  const idempotency = new IdempotencyStore(conn, h.config);
  declared.set(IDEMPOTENCY_COLLECTION, [{ [idempotency.expiring.field]: 1 }]);
  // History retention's marks (one document) and the deleted jobs, read by _id or in its order.
  declared.set(RETENTION_COLLECTION, []);
  declared.set(DELETED_JOBS_COLLECTION, []);
  return declared;
}

describe('every query the service sends is served by a declared index', () => {
  let h: Harness;
  const recorded: RecordedQuery[] = [];
  const connections: Connection[] = [];
  const record = (conn: Connection, dbName: string) => {
    conn.getClient().on('commandStarted', (event: CommandStartedEvent) => {
      if (event.databaseName !== dbName) return;
      recorded.push(...queriesOf(event.commandName, event.command));
    });
  };

  beforeAll(async () => {
    h = await startHarness({
      uri: monitored(inject('mongoUri')),
      env: { RATE_LIMIT_SYNC_MS: '100', RATE_LIMIT_RUN_NOW_PER_USER: '3', MAX_JOBS_PER_OWNER: '5' },
    });
    record(h.conn, h.dbName);
    await h.scheduler.startWorker();
  });
  afterAll(async () => {
    await h.stop();
    for (const conn of connections) await conn.close();
  });

  it('through the API, firing, runs, recovery after a restart, reconcile and history retention', async () => {
    const owner = `idx-${randomUUID().slice(0, 8)}`;
    const api = h.client(owner);
    const admin = h.client(`admin-${randomUUID().slice(0, 8)}`, { admin: true });

    // The API: create (with an idempotency key, replayed), list with filters and pages, get, edit.
    const created = { body: bodies.generateReport(), params: { header: { 'idempotency-key': randomUUID() } } };
    const { data: job } = await api.POST('/api/cron/jobs', created);
    expect((await api.POST('/api/cron/jobs', created)).response.headers.get('Idempotent-Replayed')).toBe('true');
    const { data: email } = await api.POST('/api/cron/jobs', { body: bodies.sendEmail() });
    const { data: every } = await api.POST('/api/cron/jobs', {
      body: { ...bodies.generateReport(), cron: '* * * * * *' },
    });
    const page = await api.GET('/api/cron/jobs', { params: { query: { limit: 1 } } });
    await api.GET('/api/cron/jobs', { params: { query: { limit: 1, cursor: page.data!.nextCursor! } } });
    await api.GET('/api/cron/jobs', { params: { query: { enabled: 'true', type: 'generateReport' } } });
    await admin.GET('/api/cron/jobs', { params: { query: { ownerId: owner, enabled: 'false' } } });
    await admin.GET('/api/cron/jobs');
    const id = { params: { path: { id: job!.id } } };
    await api.GET('/api/cron/jobs/{id}', id);
    await api.PATCH('/api/cron/jobs/{id}', { ...id, body: { cron: '0 7 * * 1' } });
    await api.PUT('/api/cron/jobs/{id}', { ...id, body: { ...bodies.generateReport(), name: 'replaced' } });
    await api.PATCH('/api/cron/jobs/{id}', { ...id, body: { enabled: false } });
    await api.PATCH('/api/cron/jobs/{id}', { ...id, body: { enabled: true } });
    await api.GET('/api/cron/job-types');
    expect((await fetch(`${h.baseUrl}/metrics`)).status).toBe(200);
    // Over the job cap, and over the run-now limit.
    for (let i = 0; i < 3; i++) await api.POST('/api/cron/jobs', { body: bodies.purgeSessions() });
    const runNow = (target: { id: string }) =>
      api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: target.id } } });
    for (const target of [email!, job!, job!]) expect((await runNow(target)).response.status).toBe(202);
    expect((await runNow(job!)).response.status).toBe(429);

    // Firing by the worker: the every-second job and the manual runs reach an end.
    await waitFor(
      async () => {
        const runs = await api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id: every!.id } } });
        return runs.data!.items.filter((r) => r.status === 'succeeded').length >= 2;
      },
      { what: 'two fires of the every-second job' },
    );
    await waitFor(
      async () => {
        const runs = await api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id: email!.id } } });
        return runs.data!.items.some((r) => r.status === 'succeeded');
      },
      { what: 'the manual run' },
    );
    const runs = await api.GET('/api/cron/jobs/{id}/runs', {
      params: { path: { id: every!.id }, query: { limit: 1 } },
    });
    await api.GET('/api/cron/jobs/{id}/runs', {
      params: { path: { id: every!.id }, query: { limit: 1, cursor: runs.data!.nextCursor! } },
    });
    await admin.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    // The audit log is read by its cleanup (an admin's type).
    const { data: cleanup } = await admin.POST('/api/cron/jobs', {
      body: { name: 'cleanup', type: 'cleanupOldAuditLogs', cron: '0 4 * * *', payload: { olderThanDays: 90 } },
    });
    await admin.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: cleanup!.id } } });
    await waitFor(
      async () => {
        const runs = await admin.GET('/api/cron/jobs/{id}/runs', { params: { path: { id: cleanup!.id } } });
        return runs.data!.items.some((r) => r.status === 'succeeded');
      },
      { what: 'the cleanup run' },
    );
    await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id: every!.id } } });

    // A restart: this worker stops, another process's worth starts on the same database (it
    // reconciles and recovers at start), then both repairs run once more by hand.
    await h.scheduler.stop(h.config.SHUTDOWN_TIMEOUT_MS);
    const conn = await connectDb(monitored(inject('mongoUri')), h.config, h.dbName);
    connections.push(conn);
    record(conn, h.dbName);
    const restarted = await openScheduler(conn, { ...h.config, WORKER_NAME: 'worker-b' }, h.logger);
    await restarted.startWorker();
    await restarted.reconcile();
    await restarted.recover();
    // A retention pass that has something to delete: the (deleted) every-second job's runs past one kept,
    // the manual runs' claims (their runs are finished).
    const keepOne = { ...h.config, RUNS_KEPT_SUCCEEDED_PER_JOB: 1 };
    const swept = await sweepHistory({ ...restarted, conn, config: keepOne, logger: h.logger });
    expect(swept.runsOverLimit).toBeGreaterThan(0);
    expect(swept.claims).toBeGreaterThan(0);
    await restarted.stop(h.config.SHUTDOWN_TIMEOUT_MS);
    // The rate-limit counts reach the database every RATE_LIMIT_SYNC_MS.
    await waitFor(async () => recorded.some((q) => q.collection === RATE_LIMIT_COLLECTION), {
      what: 'a rate-limit sync',
    });

    const declared = declaredIndexes(h.scheduler, h.conn, h);
    const ours = recorded.filter((q) => declared.has(q.collection));
    // The run went where it should: every collection of ours was queried.
    expect(new Set(ours.map((q) => q.collection))).toEqual(new Set(declared.keys()));
    const unserved = new Map<string, string>();
    for (const q of ours) {
      const why = unservedQuery(q.filter, q.sort, declared.get(q.collection)!);
      if (why)
        unserved.set(
          `${q.command} ${q.collection} ${JSON.stringify(q.filter)} sort ${JSON.stringify(q.sort ?? {})}`,
          why,
        );
    }
    expect(Object.fromEntries(unserved)).toEqual({});
  });
});
