import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { sign } from 'hono/jwt';
import type { Connection } from 'mongoose';
import type { DestinationStream } from 'pino';
import { inject } from 'vitest';
import { type CronClient, createCronClient } from '../../generated/client.js';
import { createApp } from '../../src/app.js';
import { connectDb, pingDb } from '../../src/db/index.js';
import { DEVELOPMENT_JWT_SECRET, type Env, parseEnv } from '../../src/env.js';
import { openGuards } from '../../src/lib/guards.js';

export { freePort } from '../../src/db/index.js';

import { createLogger, type Logger } from '../../src/lib/logger.js';
import { openScheduler, type Scheduler } from '../../src/scheduler/index.js';
import { contractCheck } from './contract.js';

export interface Harness {
  baseUrl: string;
  config: Env;
  logger: Logger;
  conn: Connection;
  scheduler: Scheduler;
  dbName: string;
  /** A generated client acting as `sub`, every response checked against openapi/openapi.json. */
  client(sub: string, options?: { admin?: boolean; claims?: Record<string, unknown> }): CronClient;
  token(
    sub: string,
    options?: { admin?: boolean; expiresInSeconds?: number; secret?: string; claims?: Record<string, unknown> },
  ): Promise<string>;
  /** Another worker process's worth of scheduler: its own connection to the same database. */
  addWorker(name: string): Promise<Scheduler>;
  stop(): Promise<void>;
}

/**
 * Abuse limits for tests that are not about them (also for the tests that start the service as
 * processes): rate limits far above what a test file sends, and example.com recipients allowed.
 * tests/abuse-limits.test.ts and tests/email-recipients.test.ts set their own.
 */
export const RELAXED_GUARDS = {
  RATE_LIMIT_PER_IP: '100000',
  RATE_LIMIT_PER_USER: '100000',
  RATE_LIMIT_RUN_NOW_PER_USER: '100000',
  EMAIL_ALLOWED_DOMAINS: 'example.com',
};

/** Settings the tests run with unless a test says otherwise: fast polling, seconds crons allowed. */
const TEST_ENV = {
  NODE_ENV: 'test',
  // Handlers that fail on purpose log errors; TEST_LOG_LEVEL=info shows everything.
  LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal',
  CRON_ALLOW_SECONDS: 'true',
  CRON_MIN_INTERVAL_SECONDS: '1',
  AGENDA_PROCESS_EVERY_MS: '200',
  SHUTDOWN_TIMEOUT_MS: '5000',
  ...RELAXED_GUARDS,
};

/**
 * A real service for one test file: its own database on the shared server, the scheduler
 * module, the HTTP app on a loopback port and, when asked, a running Agenda worker.
 */
export async function startHarness(
  options: { worker?: boolean; env?: Record<string, string>; uri?: string; logDestination?: DestinationStream } = {},
): Promise<Harness> {
  const outbox = await mkdtemp(join(tmpdir(), 'cron-outbox-'));
  const base = { ...TEST_ENV, OUTBOX_DIR: outbox, ...options.env };
  const config = parseEnv({ ...base, WORKER_NAME: 'worker-a' });
  const logger = createLogger(config, options.logDestination);
  const uri = options.uri ?? inject('mongoUri');
  const dbName = `t_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const conn = await connectDb(uri, config, dbName);
  const scheduler = await openScheduler(conn, config, logger);
  const extra: { scheduler: Scheduler; conn: Connection }[] = [];

  const guards = await openGuards(conn, config, logger);
  const app = createApp({ config, logger, service: scheduler.service, guards, ready: () => pingDb(conn), conn });
  const server = await new Promise<ReturnType<typeof serve>>((ok) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => ok(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (options.worker) await scheduler.startWorker();

  const token: Harness['token'] = (sub, o = {}) =>
    sign(
      {
        sub,
        exp: Math.floor(Date.now() / 1000) + (o.expiresInSeconds ?? 600),
        ...(o.admin ? { role: 'admin' } : {}),
        // What the service checks when configured, so the default token passes.
        ...(config.JWT_ISSUER ? { iss: config.JWT_ISSUER } : {}),
        ...(config.JWT_AUDIENCE ? { aud: config.JWT_AUDIENCE } : {}),
        ...o.claims,
      },
      o.secret ?? config.JWT_SECRET ?? DEVELOPMENT_JWT_SECRET,
      'HS256',
    );

  return {
    baseUrl,
    config,
    logger,
    conn,
    scheduler,
    dbName,
    token,
    client(sub, o = {}) {
      const client = createCronClient({ baseUrl, getToken: () => token(sub, o) });
      client.use(contractCheck);
      return client;
    },
    async addWorker(name) {
      const workerConfig = parseEnv({ ...base, WORKER_NAME: name });
      const workerConn = await connectDb(uri, workerConfig, dbName);
      const worker = await openScheduler(workerConn, workerConfig, createLogger(workerConfig));
      await worker.startWorker();
      extra.push({ scheduler: worker, conn: workerConn });
      return worker;
    },
    async stop() {
      guards.stop();
      (server as Server).closeAllConnections();
      await new Promise((ok) => server.close(ok));
      for (const w of [...extra, { scheduler, conn }]) {
        await w.scheduler.stop(config.SHUTDOWN_TIMEOUT_MS);
      }
      await conn.dropDatabase().catch(() => undefined);
      for (const w of [...extra, { scheduler, conn }]) await w.conn.close();
    },
  };
}

/** Polls `probe` until it returns something truthy, or fails with the last value at the deadline. */
type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

export async function waitFor<T>(
  probe: () => Promise<T>,
  { timeoutMs = 15_000, intervalMs = 100, what = 'condition' } = {},
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last) return last as Truthy<T>;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The shared test server's URI, pointed at a database of the caller's own. */
export const uriWithDb = (uri: string, db: string) =>
  uri.replace(/^(mongodb(?:\+srv)?:\/\/[^/?]+)\/?[^?]*/, `$1/${db}`);

/** A valid create body of each type, to build on in tests. */
export const bodies = {
  sendEmail: (name = `email-${randomUUID().slice(0, 8)}`) => ({
    name,
    type: 'sendEmail' as const,
    cron: '0 8 * * *',
    timezone: 'Europe/Berlin',
    payload: { to: 'someone@example.com', subject: 'Hello', template: 'digest' as const, params: { count: 2 } },
  }),
  generateReport: (name = `report-${randomUUID().slice(0, 8)}`) => ({
    name,
    type: 'generateReport' as const,
    cron: '0 6 * * 1',
    payload: { type: 'runs' as const, period: 'week' as const },
  }),
  purgeSessions: (name = `purge-${randomUUID().slice(0, 8)}`) => ({
    name,
    type: 'purgeSessions' as const,
    cron: '0 3 * * *',
    payload: { inactiveDays: 30 },
  }),
};
