import { timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { Connection } from 'mongoose';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Env } from '../env.js';
import { jobTypes } from '../jobs/registry.js';
import { ApiError } from './problem.js';

/**
 * Prometheus metrics (prom-client) of this process. Counters and histograms live in one
 * process-wide registry, fed by small functions the API and the runner call; database gauges are
 * counted when scraped. Importing this starts no timer: process metrics begin at the first scrape.
 */
const shared = new Registry();

const httpDuration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'HTTP requests by method, route (the route pattern, "unmatched" for none) and status.',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [shared],
});

const runs = new Counter({
  name: 'cron_runs_total',
  help:
    'Runs this process finished or accounted for, by job type and outcome (succeeded, failed, timedOut, ' +
    'interrupted; missed and skipped from the fire path).',
  labelNames: ['type', 'outcome'] as const,
  registers: [shared],
});

const fireLag = new Histogram({
  name: 'cron_fire_lag_seconds',
  help: 'How long after its cron slot a scheduled run started, by job type.',
  labelNames: ['type'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [shared],
});

const dbErrors = new Counter({
  name: 'cron_db_errors_total',
  help:
    'Database errors: api (a request answered 503), heartbeat (the driver could not reach the server), metrics ' +
    '(a gauge could not be counted).',
  labelNames: ['source'] as const,
  registers: [shared],
});

const DB_ERROR_SOURCES = ['api', 'heartbeat', 'metrics'] as const;
export type DbErrorSource = (typeof DB_ERROR_SOURCES)[number];
// Every source is exported from the start at 0, so a rate or an alert has a series before the first error.
for (const source of DB_ERROR_SOURCES) dbErrors.inc({ source }, 0);

/** What a running worker says about itself, read at scrape time (src/scheduler/index.ts). */
export interface WorkerGaugeState {
  working: boolean;
  runsInProgress: number;
  runsWaiting: number;
  partitionsHeld: number;
  partitions: number;
  lastPollAt?: number;
}

/** The workers of this process by name: one in a service, several in tests that start more. */
const workers = new Map<string, () => WorkerGaugeState>();

function workerGauge(name: string, help: string, read: (state: WorkerGaugeState) => number | undefined) {
  new Gauge({
    name,
    help,
    labelNames: ['worker'] as const,
    registers: [shared],
    collect() {
      this.reset();
      for (const [worker, state] of workers) {
        const value = read(state());
        if (value !== undefined) this.set({ worker }, value);
      }
    },
  });
}

workerGauge('cron_worker_up', 'A worker taking work (1), or draining to stop (0), by WORKER_NAME.', (s) =>
  s.working ? 1 : 0,
);
workerGauge('cron_runs_in_progress', 'Runs this worker is executing now.', (s) => s.runsInProgress);
workerGauge(
  'cron_partitions_held',
  'Firing partitions this worker holds (leases); across the live workers they add up to cron_partitions.',
  (s) => s.partitionsHeld,
);
workerGauge('cron_partitions', 'Firing partitions configured (SCHEDULER_PARTITIONS).', (s) => s.partitions);
workerGauge(
  'cron_runs_waiting',
  'Runs this worker fired that wait for a free slot (RUN_CONCURRENCY): a backlog after a burst.',
  (s) => s.runsWaiting,
);
workerGauge(
  'cron_worker_last_poll_timestamp_seconds',
  "When the worker's Agenda last polled for work (every AGENDA_PROCESS_EVERY_MS).",
  (s) => (s.lastPollAt === undefined ? undefined : s.lastPollAt / 1000),
);

/** Serves a started worker's gauges from this process's registry until the returned function is called. */
export function watchWorker(name: string, state: () => WorkerGaugeState): () => void {
  workers.set(name, state);
  return () => {
    if (workers.get(name) === state) workers.delete(name);
  };
}

/** A finished run; `fireLagMs` for scheduled runs only (slot to start). */
export function observeRun(type: string, outcome: string, fireLagMs?: number): void {
  runs.inc({ type, outcome });
  if (fireLagMs !== undefined) fireLag.observe({ type }, Math.max(0, fireLagMs) / 1000);
}

export function countDbError(source: DbErrorSource): void {
  dbErrors.inc({ source });
}

/** Times every request; the route label is the matched pattern, so ids do not explode the series. */
export const httpMetrics: MiddlewareHandler = async (c, next) => {
  const stop = httpDuration.startTimer();
  try {
    await next();
  } finally {
    // Middleware is registered for every method ('ALL'); the last route with a real method is the handler's.
    const handler = matchedRoutes(c).findLast((r) => r.method !== 'ALL');
    stop({ method: c.req.method, route: handler?.path ?? 'unmatched', status: String(c.res.status) });
  }
};

/** Counts at scrape time: enabled jobs by type, and Agenda jobs a worker holds locked now. */
function databaseGauges(conn: Connection): Registry {
  const registry = new Registry();
  // A scrape must not hang on a stalled database; the gauge keeps its last value then.
  const maxTimeMS = 2_000;
  const guard = async (count: () => Promise<void>) => {
    try {
      await count();
    } catch {
      countDbError('metrics');
    }
  };
  new Gauge({
    name: 'cron_jobs_active',
    help: 'Enabled (scheduled) cron jobs, by job type.',
    labelNames: ['type'] as const,
    registers: [registry],
    async collect() {
      await guard(async () => {
        const groups = await conn
          .collection('cron_jobs')
          .aggregate<{ _id: string; n: number }>(
            [{ $match: { enabled: true } }, { $group: { _id: '$type', n: { $sum: 1 } } }],
            { maxTimeMS },
          )
          .toArray();
        this.reset();
        for (const g of groups) this.set({ type: g._id }, g.n);
      });
    },
  });
  new Gauge({
    name: 'cron_agenda_locked_jobs',
    help: 'Agenda jobs (schedules and runs) locked by a worker right now.',
    registers: [registry],
    async collect() {
      await guard(async () =>
        this.set(
          await conn
            .collection('agendaJobs')
            // By name too: the names lead Agenda's index, so this reads the index, not the collection.
            .countDocuments({ name: { $in: agendaJobNames() }, lockedAt: { $ne: null } }, { maxTimeMS }),
        ),
      );
    },
  });
  return registry;
}

/** Every name an Agenda job of ours has: the dispatcher and one per job type (its runs). */
const agendaJobNames = () => jobTypes.map((t) => t.name);

export type MetricsConfig = Pick<Env, 'NODE_ENV' | 'METRICS_TOKEN'>;

/** Whether /metrics is served: always with a token; without one, everywhere but production. */
export const metricsEnabled = (config: MetricsConfig) =>
  Boolean(config.METRICS_TOKEN) || config.NODE_ENV !== 'production';

let processMetrics = false;

/** Whether an Authorization header carries the configured METRICS_TOKEN (always true without one). */
export function metricsTokenMatches(config: Pick<Env, 'METRICS_TOKEN'>, header: string | undefined): boolean {
  if (!config.METRICS_TOKEN) return true;
  const expected = Buffer.from(`Bearer ${config.METRICS_TOKEN}`);
  const given = Buffer.from(header ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The process-wide series plus `extra` registries, in the Prometheus text format. */
export async function renderMetrics(...extra: Registry[]): Promise<{ body: string; contentType: string }> {
  if (!processMetrics) {
    processMetrics = true;
    collectDefaultMetrics({ register: shared });
  }
  const registry = Registry.merge([shared, ...extra]);
  return { body: await registry.metrics(), contentType: registry.contentType };
}

/**
 * GET /metrics in the Prometheus text format. With METRICS_TOKEN set it needs
 * `Authorization: Bearer <token>` (Prometheus' `authorization` scrape setting); disabled answers 404.
 */
export function metricsHandler(config: MetricsConfig, conn?: Connection, ...extra: Registry[]): MiddlewareHandler {
  const perApp = conn ? databaseGauges(conn) : new Registry();
  return async (c) => {
    if (!metricsEnabled(config))
      throw new ApiError('not-found', 'Metrics are off: set METRICS_TOKEN to serve them in production.');
    if (!metricsTokenMatches(config, c.req.header('Authorization')))
      throw new ApiError('unauthorized', 'Send Authorization: Bearer <METRICS_TOKEN>.');
    const { body, contentType } = await renderMetrics(perApp, ...extra);
    return c.body(body, 200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  };
}
