import { serve } from '@hono/node-server';
import { createApp } from './app.js';
import { env } from './env.js';
import { connectDb, pingDb } from './lib/db.js';
import { startLocalDb, type LocalDb } from './lib/local-db.js';
import { createLogger } from './lib/logger.js';
import { openScheduler } from './scheduler/index.js';

export type Role = 'api' | 'worker';

/**
 * Starts the given roles in this process: connects (starting the local FerretDB when
 * MONGODB_URI is unset), serves the API and/or runs the worker, and shuts down cleanly on
 * SIGINT/SIGTERM: stop taking requests and work, let runs finish, close the database.
 */
export async function start(roles: Role[]): Promise<void> {
  let config;
  try {
    config = env();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  }
  const logger = createLogger(config);
  logger.info({ roles }, 'starting');

  let localDb: LocalDb | undefined;
  if (!config.MONGODB_URI) {
    if (roles.length < 2) {
      logger.fatal('MONGODB_URI is not set. `npm start` runs API, worker and a local database in one process; for `npm run api` and `npm run worker` start a database (`npm run db` prints its URI) and set MONGODB_URI.');
      process.exit(1);
    }
    localDb = await startLocalDb(config.LOCAL_DB_DIR, logger);
  }
  const conn = await connectDb(config.MONGODB_URI ?? localDb!.uri, config);
  const scheduler = await openScheduler(conn, config, logger);

  let server: ReturnType<typeof serve> | undefined;
  if (roles.includes('api')) {
    const app = createApp({ config, logger, service: scheduler.service, ready: () => pingDb(conn) });
    server = serve({ fetch: app.fetch, port: config.PORT, hostname: config.HOST }, (info) => {
      const base = `http://${info.address}:${info.port}`;
      logger.info({ url: base, reference: `${base}/reference`, spec: `${base}/openapi.json` }, `API listening; reference at ${base}/reference`);
    });
  }
  if (roles.includes('worker')) await scheduler.startWorker();

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
    await scheduler.stop(config.SHUTDOWN_TIMEOUT_MS);
    await conn.close();
    await localDb?.stop();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
