import { rm } from 'node:fs/promises';
import type { Connection } from 'mongoose';
import { connectDb, type LocalDb, startLocalDb } from '../../src/db/index.js';
import { parseEnv } from '../../src/env.js';
import { type Smtp, startSmtp } from '../../tests/helpers/smtp.js';
import { COMMANDS_LINE, type CommandTotals } from './sched-monitor.js';
import { cpuSeconds, type ServiceProcess, spawnService } from './worker-process.js';

const DATA_DIR = '.local/bench-scheduling-db';

/** FerretDB counts as idle below 10 % of a core, sampled over this long. */
const IDLE_SAMPLE_MS = 250;
const IDLE_CPU_SECONDS = 0.1 * (IDLE_SAMPLE_MS / 1000);

/** The service's own default, used by our worker and the baseline alike. */
export const PROCESS_EVERY_MS = parseEnv({}).AGENDA_PROCESS_EVERY_MS;
export const MISFIRE_GRACE_MS = parseEnv({}).MISFIRE_GRACE_MS;

/** The bench's view of the databases: long replies allowed, since a scan of 10 000 jobs under load takes seconds. */
const BENCH_CONFIG = parseEnv({ LOG_LEVEL: 'silent', MONGODB_SOCKET_TIMEOUT_MS: '300000' });

export interface BenchDb {
  name: string;
  uri: string;
  conn: Connection;
  /** Drops the database and closes the connection. */
  drop(): Promise<void>;
}

/**
 * What every case of the suite shares: one FerretDB of its own (a database per case in it,
 * dropped after the case) and a real SMTP server on loopback that the sendEmail runs (and the
 * baseline's fires) deliver to, so a delivery count tells how far a case has come without
 * querying the database the worker is busy with.
 */
export async function openSchedBench() {
  await rm(DATA_DIR, { recursive: true, force: true });
  const db: LocalDb = await startLocalDb(DATA_DIR);
  const smtp: Smtp = await startSmtp();
  const uriOf = (name: string) => db.uri.replace(/\/[^/]*$/, `/${name}`);
  return {
    smtp,
    /** The FerretDB process, for its CPU time. */
    dbPid: db.pid,
    /**
     * Waits (up to `maxMs`) until FerretDB is idle: a killed worker's queries in flight go on
     * running for seconds (at 10 000 jobs each lock query takes seconds under load), and a
     * case started meanwhile would be measured against them. Returns the time waited.
     */
    async settle(maxMs = 30_000): Promise<number> {
      const started = Date.now();
      for (;;) {
        const before = cpuSeconds(db.pid);
        await new Promise((r) => setTimeout(r, IDLE_SAMPLE_MS));
        if (cpuSeconds(db.pid) - before < IDLE_CPU_SECONDS || Date.now() - started > maxMs) return Date.now() - started;
      }
    },
    async database(name: string): Promise<BenchDb> {
      const conn = await connectDb(uriOf(name), BENCH_CONFIG);
      return {
        name,
        uri: uriOf(name),
        conn,
        async drop() {
          await conn.dropDatabase();
          await conn.close();
        },
      };
    },
    async close() {
      await smtp.close();
      await db.stop();
      await rm(DATA_DIR, { recursive: true, force: true });
    },
  };
}

export type SchedBench = Awaited<ReturnType<typeof openSchedBench>>;

/** Our worker process, with the driver's command totals on request. */
export interface OurWorker extends ServiceProcess {
  /** Database time per command since the last call (see sched-monitor.ts). */
  commands(): Promise<CommandTotals>;
}

/**
 * Starts `src/jobs/scheduler.ts` as its own process, configured as in production except for
 * what the bench needs: seconds crons, mail to the bench's SMTP server, a short drain on stop
 * (the database is thrown away), and the command monitor preloaded.
 */
export async function startOurWorker(
  bench: SchedBench,
  uri: string,
  name: string,
  timeoutMs: number,
  /** More settings, e.g. WORKER_METRICS_PORT for the failover case's probe. */
  extraEnv: Record<string, string> = {},
): Promise<OurWorker> {
  const worker = await spawnService({
    name,
    entry: 'src/jobs/scheduler.ts',
    preload: ['./bench/lib/sched-monitor.ts'],
    env: {
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      JWT_SECRET: 'bench-only-secret-0123456789abcdef-0123',
      MONGODB_URI: uri,
      WORKER_NAME: name,
      CRON_ALLOW_SECONDS: 'true',
      CRON_MIN_INTERVAL_SECONDS: '1',
      AGENDA_PROCESS_EVERY_MS: String(PROCESS_EVERY_MS),
      SMTP_URL: bench.smtp.url,
      EMAIL_ALLOWED_DOMAINS: 'example.com',
      SHUTDOWN_TIMEOUT_MS: '1000',
      ...extraEnv,
    },
    readyText: '"msg":"worker started"',
    timeoutMs,
  });
  return {
    ...worker,
    commands: () =>
      new Promise<CommandTotals>((ok) => {
        const timer = setTimeout(() => ok({}), 5000);
        worker.onLine((line) => {
          if (!line.startsWith(COMMANDS_LINE)) return;
          clearTimeout(timer);
          ok(JSON.parse(line.slice(COMMANDS_LINE.length)) as CommandTotals);
        });
        process.kill(worker.pid, 'SIGUSR2');
      }),
  };
}
