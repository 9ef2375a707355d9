import { type Context, Hono } from 'hono';
import type { Env } from './env.js';
import { metricsTokenMatches, renderMetrics } from './lib/metrics.js';
import { PROBLEMS, type ProblemCode, problem } from './lib/problem.js';
import type { WorkerStatus } from './scheduler/index.js';

export type WorkerProbeConfig = Pick<
  Env,
  'METRICS_TOKEN' | 'WORKER_NAME' | 'AGENDA_PROCESS_EVERY_MS' | 'MONGODB_SOCKET_TIMEOUT_MS'
>;

export interface WorkerProbeDeps {
  config: WorkerProbeConfig;
  status: () => WorkerStatus;
  /** Whether the database answers a ping. */
  ping: () => Promise<boolean>;
}

/**
 * How old Agenda's last poll may be for the worker to count as alive: three poll intervals, plus
 * one slow database reply (a poll waits for its query before the next one starts).
 */
export const pollStaleAfterMs = (config: WorkerProbeConfig) =>
  3 * config.AGENDA_PROCESS_EVERY_MS + config.MONGODB_SOCKET_TIMEOUT_MS;

/**
 * The worker's own small HTTP listener (WORKER_METRICS_PORT): a worker serves no API, so without
 * it its run counters and fire lag would reach no scrape. GET /metrics: this process's series
 * (runs, fire lag, runs in progress, dispatcher held, last poll; METRICS_TOKEN guards it when set).
 * GET /healthz: 200 while the database answers, Agenda runs and has polled recently, else 503.
 */
export function createWorkerProbe(deps: WorkerProbeDeps): Hono {
  const app = new Hono();
  app.get('/metrics', async (c) => {
    if (!metricsTokenMatches(deps.config, c.req.header('Authorization')))
      return sendProblem(c, 'unauthorized', 'Send Authorization: Bearer <METRICS_TOKEN>.');
    const { body, contentType } = await renderMetrics();
    return c.body(body, 200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  });
  app.get('/healthz', async (c) => {
    const status = deps.status();
    const lastPollAgeMs = status.lastPollAt === undefined ? undefined : Date.now() - status.lastPollAt;
    const checks = {
      database: await deps.ping(),
      agenda: status.working && status.agendaRunning,
      poll: lastPollAgeMs !== undefined && lastPollAgeMs <= pollStaleAfterMs(deps.config),
    };
    const state = {
      worker: deps.config.WORKER_NAME,
      checks,
      lastPollAgeMs,
      runsInProgress: status.runsInProgress,
      partitionsHeld: status.partitionsHeld,
      runsWaiting: status.runsWaiting,
    };
    c.header('Cache-Control', 'no-store');
    const failing = Object.entries(checks).filter(([, ok]) => !ok);
    if (failing.length === 0) return c.json({ status: 'ok', ...state }, 200);
    const detail = `The worker is not healthy: ${failing.map(([name]) => name).join(', ')} failing.`;
    return sendProblem(c, 'unavailable', detail, state);
  });
  app.notFound((c) => sendProblem(c, 'not-found', 'The worker serves GET /metrics and GET /healthz.'));
  return app;
}

/** An RFC 9457 problem with extension members (the API's sendProblem needs its request id middleware). */
function sendProblem(c: Context, code: ProblemCode, detail: string, extra: object = {}) {
  return c.body(JSON.stringify({ ...problem(code, detail), ...extra }), PROBLEMS[code].status, {
    'Content-Type': 'application/problem+json',
  });
}
