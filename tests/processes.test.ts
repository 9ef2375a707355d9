import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sign } from 'hono/jwt';
import { MongoClient, ObjectId } from 'mongodb';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCronClient } from '../generated/client.js';
import { contractCheck } from './helpers/contract.js';
import { freePort, RELAXED_GUARDS, uriWithDb, waitFor } from './helpers/harness.js';

const SECRET = 'processes-test-secret-0123456789abcdef';
const run = promisify(execFile);

/** Runs an entry point as its own process, as `npm start` / `npm run api` would. */
function launch(entry: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, exited, output: () => output };
}

const running: ChildProcess[] = [];
afterAll(() => {
  for (const c of running) if (c.exitCode === null) c.kill('SIGKILL');
});

describe('configuration errors stop the process with a clear message', () => {
  it('a bad variable exits 1 naming it', async () => {
    const p = launch('src/main.ts', { PORT: 'abc', CRON_MIN_INTERVAL_SECONDS: '-5' });
    expect(await p.exited).toBe(1);
    expect(p.output()).toContain('Invalid configuration');
    expect(p.output()).toMatch(/PORT: /);
    expect(p.output()).toMatch(/CRON_MIN_INTERVAL_SECONDS: /);
  });

  it('the API alone without MONGODB_URI exits 1 and says how to get one', async () => {
    const p = launch('src/server.ts', {});
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/MONGODB_URI is not set.*npm run db/);
  });
});

describe('SIGTERM during start-up', () => {
  it('stops the local database it was starting, then exits', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'local-db-'));
    try {
      const localDb = async () =>
        (await run('ps', ['-eo', 'args'])).stdout.split('\n').filter((line) => line.includes(dataDir));
      const p = launch('src/main.ts', { LOCAL_DB_DIR: dataDir, PORT: String(await freePort()), LOG_LEVEL: 'debug' });
      // Signal while the local database starts but the service is not up yet.
      await waitFor(async () => (await localDb()).length > 0, {
        what: 'the local database to be spawned',
        intervalMs: 20,
      });
      p.child.kill('SIGTERM');
      expect(await p.exited).toBe(0);
      // Start-up was let finish, then everything it started was stopped in order, cleanly.
      expect(p.output()).toContain('"msg":"local database stopped"');
      expect(p.output()).toContain('"msg":"stopped"');
      expect(await localDb()).toEqual([]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('SIGTERM during a run', () => {
  let smtp: SMTPServer;
  let smtpPort: number;
  const delivered: number[] = [];
  const mongo = new MongoClient(inject('mongoUri'));
  const dbName = `t_proc_${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      // A slow mail server: the handler is mid-run for 1.5 s.
      onData(stream, _session, done) {
        stream.resume();
        stream.on('end', () =>
          setTimeout(() => {
            delivered.push(Date.now());
            done();
          }, 1500),
        );
      },
    });
    await new Promise<void>((ok) => smtp.listen(0, '127.0.0.1', ok));
    smtpPort = (smtp.server.address() as AddressInfo).port;
    await mongo.connect();
  });
  afterAll(async () => {
    await mongo
      .db(dbName)
      .dropDatabase()
      .catch(() => undefined);
    await mongo.close();
    await new Promise<void>((ok) => smtp.close(() => ok()));
  });

  /** The service as its own process, on this file's database, with the slow mail server. */
  async function service() {
    const port = await freePort();
    const p = launch('src/main.ts', {
      MONGODB_URI: uriWithDb(inject('mongoUri'), dbName),
      PORT: String(port),
      JWT_SECRET: SECRET,
      SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
      AGENDA_PROCESS_EVERY_MS: '200',
      SHUTDOWN_TIMEOUT_MS: '10000',
      CRON_ALLOW_SECONDS: 'true',
      CRON_MIN_INTERVAL_SECONDS: '1',
      ...RELAXED_GUARDS,
    });
    running.push(p.child);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.ok, {
      timeoutMs: 30_000,
      what: 'the service',
    });
    const api = createCronClient({
      baseUrl: base,
      getToken: () => sign({ sub: 'proc', exp: Math.floor(Date.now() / 1000) + 600 }, SECRET, 'HS256'),
    });
    api.use(contractCheck);
    return { p, api };
  }

  /** A disabled sendEmail job run now, once its run is in progress (held 1.5 s by the slow mail server). */
  async function slowManualRun(api: Awaited<ReturnType<typeof service>>['api'], name: string) {
    const { data: job } = await api.POST('/api/cron/jobs', {
      body: {
        name,
        type: 'sendEmail',
        cron: '0 9 * * *',
        timezone: 'UTC',
        enabled: false,
        payload: { to: `${name}@example.com`, subject: 's', template: 'plain', params: { body: 'b' } },
      },
    });
    const { data: queued } = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    const runs = mongo.db(dbName).collection('cron_job_runs');
    const runId = new ObjectId(queued!.id);
    await waitFor(async () => (await runs.findOne({ _id: runId }))?.status === 'running', { what: 'the run to start' });
    return { runs, runId };
  }

  it('lets a running manual run finish, then exits 0', async () => {
    const { p, api } = await service();
    const { runs, runId } = await slowManualRun(api, 'slow-mail');

    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.output()).toContain('"msg":"stopped"');
    // The mail went out before the process ended, and the run says so.
    expect(delivered).toHaveLength(1);
    expect(await runs.findOne({ _id: runId })).toMatchObject({ status: 'succeeded', error: null });
    // Nothing left locked for the next worker.
    expect(
      await mongo
        .db(dbName)
        .collection('agendaJobs')
        .countDocuments({ lockedAt: { $ne: null } }),
    ).toBe(0);
  });

  it('takes a signal repeated at once as the same request (the Ctrl-C echo npm sends), and exits at a later one', async () => {
    const { p, api } = await service();
    await slowManualRun(api, 'slow-mail-twice');

    p.child.kill('SIGINT');
    p.child.kill('SIGINT');
    // Still draining (the mail server holds the run for 1.5 s): the echo did not end it.
    await new Promise((r) => setTimeout(r, 1_100));
    expect(p.child.exitCode).toBeNull();
    p.child.kill('SIGINT');
    expect(await p.exited).toBe(1);
    expect(p.output().match(/second stop request/g)).toHaveLength(1);
  });

  it('lets a running scheduled run finish and leaves its schedule unlocked for the next worker', async () => {
    const { p, api } = await service();
    const { data: job, response } = await api.POST('/api/cron/jobs', {
      body: {
        name: 'slow-scheduled',
        type: 'sendEmail',
        cron: '*/2 * * * * *',
        timezone: 'UTC',
        payload: { to: 'y@example.com', subject: 's', template: 'plain', params: { body: 'b' } },
      },
    });
    expect(response.status).toBe(201);
    const runs = mongo.db(dbName).collection('cron_job_runs');
    const running = await waitFor(async () => runs.findOne({ jobId: new ObjectId(job!.id), status: 'running' }), {
      what: 'a scheduled run to start',
    });

    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(await runs.findOne({ _id: running._id })).toMatchObject({ status: 'succeeded' });
    // The worker gave its firing partitions back before the database was closed: no lease waits to expire.
    const leases = await mongo.db(dbName).collection('scheduler_leases').find().toArray();
    expect(leases.length).toBeGreaterThan(0);
    expect(leases.filter((lease) => lease.holder !== null)).toEqual([]);
    const stored = await mongo
      .db(dbName)
      .collection('cron_jobs')
      .findOne({ _id: new ObjectId(job!.id) });
    expect(stored!.nextRunAt.getTime()).toBeGreaterThan(running.scheduledFor.getTime());
  });
});
