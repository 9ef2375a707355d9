import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../src/app.js';
import { connectDb, pingDb } from '../src/db/index.js';
import { parseEnv } from '../src/env.js';
import type { Guards } from '../src/lib/guards.js';
import { createLogger } from '../src/lib/logger.js';
import { openScheduler } from '../src/scheduler/index.js';
import type { CronJobService } from '../src/scheduler/service.js';
import { createWorkerProbe } from '../src/worker-probe.js';
import { type Harness, startHarness, waitFor } from './helpers/harness.js';

const METRICS_TOKEN = 'metrics-test-token-0123456789';
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ worker: true, env: { METRICS_TOKEN } });
});
afterAll(() => h.stop());

const scrape = async (token = METRICS_TOKEN) => {
  const res = await fetch(`${h.baseUrl}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};

/** The value of one series, e.g. value(text, 'cron_runs_total{type="generateReport",outcome="succeeded"}'). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  it('refuses a scrape without the configured token, as problem+json', async () => {
    const none = await fetch(`${h.baseUrl}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toContain('application/problem+json');
    expect((await scrape('wrong-token-of-some-length')).status).toBe(401);
  });

  it('exposes request durations, runs by outcome, fire lag, active and locked jobs and database errors after real traffic', async () => {
    const api = h.client('metrics-user');
    const { data: job } = await api.POST('/api/cron/jobs', {
      body: {
        name: 'every-second',
        type: 'generateReport',
        cron: '* * * * * *',
        payload: { type: 'runs', period: 'day' },
      },
    });
    const { data: paused } = await api.POST('/api/cron/jobs', {
      body: {
        name: 'paused',
        type: 'generateReport',
        cron: '0 6 * * *',
        enabled: false,
        payload: { type: 'runs', period: 'day' },
      },
    });
    await api.GET('/api/cron/jobs/{id}', { params: { path: { id: job!.id } } });
    await api.GET('/api/cron/jobs/{id}', { params: { path: { id: '0123456789abcdef01234567' } } });
    await fetch(`${h.baseUrl}/no/such/route`);
    expect(paused!.enabled).toBe(false);

    const { text, status, type } = await waitFor(
      async () => {
        const s = await scrape();
        return (value(s.text, 'cron_runs_total{type="generateReport",outcome="succeeded"}') ?? 0) >= 2 && s;
      },
      { what: 'two succeeded runs in the metrics' },
    );
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);

    // HTTP durations by route pattern and status: ids are not labels.
    expect(value(text, 'http_request_duration_seconds_count{method="POST",route="/api/cron/jobs",status="201"}')).toBe(
      2,
    );
    expect(
      value(text, 'http_request_duration_seconds_count{method="GET",route="/api/cron/jobs/:id",status="200"}'),
    ).toBe(1);
    expect(
      value(text, 'http_request_duration_seconds_count{method="GET",route="/api/cron/jobs/:id",status="404"}'),
    ).toBe(1);
    expect(value(text, 'http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}')).toBe(1);
    // Fire lag of the scheduled runs: observed, and a real duration.
    const lagCount = value(text, 'cron_fire_lag_seconds_count{type="generateReport"}')!;
    expect(lagCount).toBeGreaterThanOrEqual(2);
    expect(value(text, 'cron_fire_lag_seconds_sum{type="generateReport"}')).toBeGreaterThanOrEqual(0);
    expect(value(text, 'cron_fire_lag_seconds_bucket{le="+Inf",type="generateReport"}')).toBe(lagCount);
    // Counted from the database at scrape time: one enabled job (the paused one is not active).
    expect(value(text, 'cron_jobs_active{type="generateReport"}')).toBe(1);
    expect(value(text, 'cron_agenda_locked_jobs')).toBeGreaterThanOrEqual(0);
    expect(value(text, `cron_db_errors_total{source="api"}`)).toBe(0);
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
  });

  it('counts a manual run by its outcome, without a fire lag', async () => {
    const api = h.client('metrics-manual');
    const { data: job } = await api.POST('/api/cron/jobs', {
      body: {
        name: 'manual',
        type: 'sendEmail',
        cron: '0 6 * * *',
        enabled: false,
        payload: { to: 'm@example.com', subject: 's', template: 'plain', params: { body: 'b' } },
      },
    });
    const before = value((await scrape()).text, 'cron_runs_total{type="sendEmail",outcome="succeeded"}') ?? 0;
    await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    const text = await waitFor(
      async () => {
        const s = await scrape();
        return (value(s.text, 'cron_runs_total{type="sendEmail",outcome="succeeded"}') ?? 0) > before && s.text;
      },
      { what: 'the manual run in the metrics' },
    );
    expect(value(text, 'cron_fire_lag_seconds_count{type="sendEmail"}')).toBeUndefined();
  });
});

describe('/metrics access by configuration', () => {
  const app = (vars: Record<string, string>) =>
    createApp({
      config: parseEnv(vars),
      logger: createLogger(parseEnv({ LOG_LEVEL: 'silent' })),
      service: {} as CronJobService,
      guards: {} as Guards,
      ready: async () => true,
    });

  it('is open in development without a token, off in production without one, and token-guarded with one', async () => {
    expect((await app({ NODE_ENV: 'development' }).request('/metrics')).status).toBe(200);
    const off = await app({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).request('/metrics');
    expect(off.status).toBe(404);
    expect(off.headers.get('content-type')).toContain('application/problem+json');
    const guarded = app({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), METRICS_TOKEN });
    expect((await guarded.request('/metrics')).status).toBe(401);
    expect((await guarded.request('/metrics', { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } })).status).toBe(
      200,
    );
  });
});

describe("the worker's own listener (WORKER_METRICS_PORT)", () => {
  it("serves this process's run counters and the worker's state, behind METRICS_TOKEN; other paths are 404 problems", async () => {
    const probe = createWorkerProbe({ config: h.config, status: h.scheduler.status, ping: () => pingDb(h.conn) });
    const refused = await probe.request('/metrics');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    const res = await probe.request('/metrics', { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(value(text, 'cron_worker_up{worker="worker-a"}')).toBe(1);
    expect(value(text, 'cron_runs_in_progress{worker="worker-a"}')).toBeGreaterThanOrEqual(0);
    // The harness's only worker holds every firing partition.
    await waitFor(async () => h.scheduler.status().partitionsHeld === h.config.SCHEDULER_PARTITIONS, {
      what: 'the partitions',
    });
    const later = await (
      await probe.request('/metrics', { headers: { Authorization: `Bearer ${METRICS_TOKEN}` } })
    ).text();
    expect(value(later, 'cron_partitions_held{worker="worker-a"}')).toBe(h.config.SCHEDULER_PARTITIONS);
    expect(value(later, 'cron_partitions{worker="worker-a"}')).toBe(h.config.SCHEDULER_PARTITIONS);
    expect(
      Date.now() / 1000 - value(later, 'cron_worker_last_poll_timestamp_seconds{worker="worker-a"}')!,
    ).toBeLessThan(5);
    expect(later).toContain('# TYPE cron_runs_total counter');
    const other = await probe.request('/api/cron/jobs');
    expect(other.status).toBe(404);
    expect(other.headers.get('content-type')).toBe('application/problem+json');
  });

  it('answers /healthz 200 while the worker runs, and 503 naming the failed check once it stopped or lost its database', async () => {
    const config = { ...h.config, WORKER_NAME: 'probe-worker' };
    const conn = await connectDb(inject('mongoUri'), config, h.dbName);
    const worker = await openScheduler(conn, config, h.logger);
    await worker.startWorker();
    const probe = createWorkerProbe({ config, status: worker.status, ping: () => pingDb(conn) });
    const healthy = await probe.request('/healthz');
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toMatchObject({
      status: 'ok',
      worker: 'probe-worker',
      checks: { database: true, agenda: true, poll: true },
    });

    await worker.stop(1000);
    const stopped = await probe.request('/healthz');
    expect(stopped.status).toBe(503);
    expect(stopped.headers.get('content-type')).toBe('application/problem+json');
    expect(await stopped.json()).toMatchObject({
      type: '/problems/unavailable',
      detail: expect.stringContaining('agenda'),
      checks: { database: true, agenda: false },
    });

    await conn.close();
    const closed = await probe.request('/healthz');
    expect(closed.status).toBe(503);
    expect(await closed.json()).toMatchObject({ checks: { database: false, agenda: false } });
  });
});
