import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { createApp } from './app.js';
import { connectDb, type LocalDb, pingDb, startLocalDb } from './db/index.js';
import { type Env, envOrExit } from './env.js';
import { openGuards } from './lib/guards.js';
import { createLogger, type Logger } from './lib/logger.js';
import { metricsEnabled } from './lib/metrics.js';
import { openScheduler, type Scheduler } from './scheduler/index.js';
import { createWorkerProbe } from './worker-probe.js';

export type Role = 'api' | 'worker';

/** Time allowed beyond SHUTDOWN_TIMEOUT_MS for closing the server and the database. */
const CLOSE_GRACE_MS = 5_000;

/**
 * A stop signal this soon after the first is the same request delivered twice: Ctrl-C signals the
 * terminal's whole foreground process group, and npm, in that group, forwards it to its child too.
 */
const ECHO_WINDOW_MS = 1_000;

/**
 * Starts the given roles in this process: connects (starting the local database when
 * MONGODB_URI is unset), serves the API and/or runs the worker, and shuts down cleanly on
 * SIGINT/SIGTERM: stop taking requests and work, let runs finish, close the database. A
 * failure on the way up stops what was started and exits 1; a second signal (a second Ctrl-C,
 * not the echo of the first) exits at once. Under PM2 (`wait_ready`) it reports 'ready' once up.
 */
export async function start(roles: Role[]): Promise<void> {
  const config = envOrExit();
  const logger = createLogger(config);
  const parts: Parts = {};
  let startup: Promise<void> = Promise.resolve();

  let stopping = false;
  let stopRequestedAt = 0;
  const shutdown = async (reason: string, code: number) => {
    if (stopping) {
      if (Date.now() - stopRequestedAt < ECHO_WINDOW_MS) {
        logger.debug({ reason }, 'stop request delivered twice (terminal and npm): already stopping');
        return;
      }
      logger.warn({ reason }, 'second stop request: exiting now');
      process.exit(1);
    }
    stopping = true;
    stopRequestedAt = Date.now();
    logger.info({ reason }, 'shutting down');
    // A hard deadline above PM2's kill_timeout margin: whatever hangs, the process ends.
    setTimeout(() => process.exit(1), config.SHUTDOWN_TIMEOUT_MS + CLOSE_GRACE_MS).unref();
    // A signal during start-up lets it finish (or fail) first, so nothing it started is missed.
    await startup.catch(() => undefined);
    const failed = await stopAll(parts, config, logger);
    logger.info('stopped');
    process.exit(failed ? 1 : code);
  };
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));

  startup = bringUp(roles, parts, config, logger);
  try {
    await startup;
    // PM2 (wait_ready) counts the process online only now, not when it was forked.
    if (!stopping && process.connected) process.send?.('ready');
  } catch (error) {
    logger.fatal(error instanceof StartupError ? {} : { err: error }, `could not start: ${(error as Error).message}`);
    // Unless a signal's shutdown is already under way, stop what was started and exit 1.
    if (!stopping) await shutdown('start-up failed', 1);
  }
}

/** Starts the parts one by one, recording each in `parts` as soon as it exists. */
async function bringUp(roles: Role[], parts: Parts, config: Env, logger: Logger): Promise<void> {
  logger.info({ roles }, 'starting');
  if (!config.MONGODB_URI && roles.length < 2) {
    throw new StartupError(
      'MONGODB_URI is not set. `npm start` runs API, worker and a local database in one process; for `npm run api` ' +
        'and `npm run worker` start a database (`npm run db` prints its URI) and set MONGODB_URI.',
    );
  }
  if (!config.MONGODB_URI)
    parts.localDb = await startLocalDb(config.LOCAL_DB_DIR, logger, { backend: config.LOCAL_DB });
  const conn = await connectDb(config.MONGODB_URI ?? parts.localDb!.uri, config);
  parts.close = () => conn.close();
  parts.scheduler = await openScheduler(conn, config, logger);
  if (roles.includes('api')) {
    const guards = await openGuards(conn, config, logger);
    parts.stopGuards = guards.stop;
    const app = createApp({
      config,
      logger,
      service: parts.scheduler.service,
      guards,
      ready: () => pingDb(conn),
      conn,
    });
    parts.server = await listen(app.fetch, config.HOST, config.PORT, (base) => {
      const metrics = metricsEnabled(config) ? `${base}/metrics` : undefined;
      logger.info(
        {
          url: base,
          api: `${base}/api/cron`,
          reference: `${base}/reference`,
          spec: `${base}/openapi.json`,
          metrics: metrics ?? 'off (set METRICS_TOKEN)',
        },
        `API listening: API ${base}/api/cron, reference ${base}/reference${metrics ? `, metrics ${metrics}` : ''}`,
      );
    });
  }
  if (roles.includes('worker')) {
    await parts.scheduler.startWorker();
    if (config.WORKER_METRICS_PORT !== undefined) {
      const probe = createWorkerProbe({ config, status: parts.scheduler.status, ping: () => pingDb(conn) });
      parts.probe = await listen(probe.fetch, config.WORKER_METRICS_HOST, config.WORKER_METRICS_PORT, (base) =>
        logger.info(
          { metrics: `${base}/metrics`, health: `${base}/healthz`, worker: config.WORKER_NAME },
          `worker metrics listening: ${base}/metrics, health ${base}/healthz`,
        ),
      );
    }
  }
}

class StartupError extends Error {}

interface Parts {
  localDb?: LocalDb;
  server?: Server;
  /** The worker's /metrics and /healthz listener (WORKER_METRICS_PORT). */
  probe?: Server;
  scheduler?: Scheduler;
  close?: () => Promise<void>;
  stopGuards?: () => void;
}

async function listen(
  fetch: Parameters<typeof serve>[0]['fetch'],
  hostname: string,
  port: number,
  announce: (base: string) => void,
): Promise<Server> {
  return new Promise((ok, fail) => {
    const server = serve({ fetch, port, hostname }, (info) => {
      announce(`http://${info.address}:${info.port}`);
      ok(server as Server);
    });
    // EADDRINUSE and the like: a clear start-up failure, not an unhandled 'error' event.
    server.once('error', (error) => fail(new StartupError(`cannot listen on ${hostname}:${port}: ${error.message}`)));
  });
}

/** Stops every part that was started, each even when one before it fails; true if any failed. */
async function stopAll(parts: Parts, config: Env, logger: Logger): Promise<boolean> {
  const steps: [string, (() => Promise<unknown>) | undefined][] = [
    ['server', parts.server && (() => closeServer(parts.server!))],
    ['worker metrics listener', parts.probe && (() => closeServer(parts.probe!))],
    ['expiry sweeper', parts.stopGuards && (async () => parts.stopGuards!())],
    ['worker', parts.scheduler && (() => parts.scheduler!.stop(config.SHUTDOWN_TIMEOUT_MS))],
    ['database connection', parts.close],
    ['local database', parts.localDb && (() => parts.localDb!.stop())],
  ];
  let failed = false;
  for (const [name, step] of steps) {
    if (!step) continue;
    try {
      await step();
      logger.debug(`${name} stopped`);
    } catch (error) {
      failed = true;
      logger.error({ err: error }, `error while stopping the ${name}`);
    }
  }
  return failed;
}

function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((ok) => server.close(() => ok()));
  // Keep-alive clients get a moment to finish their request, then are cut.
  setTimeout(() => server.closeAllConnections(), 1_000).unref();
  return closed;
}
