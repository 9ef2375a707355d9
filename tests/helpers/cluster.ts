import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { sign } from 'hono/jwt';
import type { Connection } from 'mongoose';
import { createCronClient } from '../../generated/client.js';
import { connectDb, freePort } from '../../src/db/index.js';
import { parseEnv } from '../../src/env.js';
import { type Models, models } from '../../src/models/index.js';
import { RELAXED_GUARDS, waitFor } from './harness.js';
import { type Runtime, thisNode } from './runtimes.js';

const root = resolve(import.meta.dirname, '../..');
const SECRET = 'cluster-test-secret-0123456789abcdef-xyz';

/** One service process (API or worker) started from its entry point, as PM2 would. */
export interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): string;
  /** Waits until the output contains `text`. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
}

export function launch(name: string, entry: string, env: Record<string, string>, runtime: Runtime = thisNode): Proc {
  const child = spawn(runtime.command, [...runtime.args, entry], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  // A test process that dies (an uncaught error, a timeout) must not leave services running.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = once(child, 'exit').then(([code]) => {
    process.off('exit', killOnExit);
    return code as number | null;
  });
  return {
    name,
    child,
    exited,
    output: () => output,
    waitFor: (text, timeoutMs = 30_000) =>
      waitFor(
        async () => {
          if (child.exitCode !== null)
            throw new Error(`${name} exited (${child.exitCode}) before printing ${text}:\n${output.slice(-2000)}`);
          return output.includes(text);
        },
        { timeoutMs, what: `${name} to print ${text}` },
      ).then(() => undefined),
  };
}

export interface ClusterOptions {
  /** Database URI with the database name in its path. */
  uri: string;
  workers: number;
  /** What runs every process; the Node running the tests unless given. */
  runtime?: Runtime;
  /** Service configuration shared by every process (JOB_TYPE_POLICIES, SMTP_URL...). */
  env?: Record<string, string>;
  /**
   * 'test' (unless given): short poll, misfire grace and drain, so scenarios end fast.
   * 'default': the service's own, as an operator runs it (tests/chaos.test.ts).
   */
  timings?: 'test' | 'default';
}

/** The timings `timings: 'test'` shortens; everything else keeps the service's default. */
const TEST_TIMINGS = { AGENDA_PROCESS_EVERY_MS: '500', MISFIRE_GRACE_MS: '1500', SHUTDOWN_TIMEOUT_MS: '5000' };

/**
 * An API process and N worker processes on one database, each its own OS process started from
 * the same entry points as production, plus a database connection for the test to inspect what
 * they recorded.
 */
export async function startCluster(options: ClusterOptions) {
  const port = await freePort();
  const env = {
    MONGODB_URI: options.uri,
    JWT_SECRET: SECRET,
    CRON_ALLOW_SECONDS: 'true',
    CRON_MIN_INTERVAL_SECONDS: '1',
    ...(options.timings === 'default' ? {} : TEST_TIMINGS),
    ...RELAXED_GUARDS,
    ...options.env,
  };
  const procs: Proc[] = [];
  const api = launch('api', 'src/server.ts', { ...env, PORT: String(port) }, options.runtime);
  procs.push(api);
  const workers: Proc[] = [];
  const startWorker = async (name = `worker-${workers.length + 1}`, extra: Record<string, string> = {}) => {
    const worker = launch(name, 'src/jobs/scheduler.ts', { ...env, ...extra, WORKER_NAME: name }, options.runtime);
    procs.push(worker);
    // Start-up reconciles every job first: allow for many on a busy database.
    await worker.waitFor('"msg":"worker started"', 180_000);
    workers.push(worker);
    return worker;
  };
  try {
    for (let i = 0; i < options.workers; i++) await startWorker();
    await api.waitFor('"msg":"API listening');
  } catch (error) {
    for (const p of procs) p.child.kill('SIGKILL');
    throw error;
  }
  const config = parseEnv({ ...env, LOG_LEVEL: 'silent', MONGODB_SOCKET_TIMEOUT_MS: '120000' });
  const conn: Connection = await connectDb(options.uri, config);
  const m: Models = models(conn);
  const baseUrl = `http://127.0.0.1:${port}`;

  return {
    baseUrl,
    api,
    workers,
    conn,
    models: m,
    startWorker,
    /** A typed client acting as `sub`. */
    async client(sub: string) {
      const token = await sign({ sub, exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET, 'HS256');
      return createCronClient({ baseUrl, getToken: () => token });
    },
    /** SIGTERMs every process still running and waits for them; closes the connection. */
    async stop() {
      for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
      await Promise.all(
        procs.map((p) =>
          Promise.race([p.exited, new Promise((r) => setTimeout(r, 15_000))]).then(() => {
            if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
          }),
        ),
      );
      await conn.close();
    },
  };
}

export type Cluster = Awaited<ReturnType<typeof startCluster>>;
