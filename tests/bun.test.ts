import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { sign } from 'hono/jwt';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createCronClient } from '../generated/client.js';
import { contractCheck } from './helpers/contract.js';
import { freePort, uriWithDb, waitFor } from './helpers/harness.js';

const SECRET = 'bun-smoke-test-secret-0123456789abcdef';
// The Bun of the `bun` npm package (a dev dependency), not whatever the machine may have. Its
// postinstall moves the platform package's binary over the bin/bun.exe placeholder; where install
// scripts were skipped, the binary is still in the platform package.
const require = createRequire(import.meta.url);
const bun = [
  join(dirname(require.resolve('bun/package.json')), 'bin/bun.exe'),
  join(dirname(require.resolve(`@oven/bun-${process.platform}-${process.arch}/package.json`)), 'bin/bun'),
].find((file) => existsSync(file) && statSync(file).size > 1_000_000)!;
const dbName = `t_bun_${randomUUID().replace(/-/g, '').slice(0, 8)}`;
const mongo = new MongoClient(uriWithDb(inject('mongoUri'), dbName));
let stopService = () => {};
afterAll(async () => {
  stopService();
  await mongo
    .db(dbName)
    .dropDatabase()
    .catch(() => undefined);
  await mongo.close();
});

describe('under Bun', () => {
  it('the service starts, creates and lists a job, sees it fire, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(bun, ['src/main.ts'], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        NODE_ENV: 'production', // JSON logs
        LOG_LEVEL: 'info',
        JWT_SECRET: SECRET,
        MONGODB_URI: uriWithDb(inject('mongoUri'), dbName),
        PORT: String(port),
        AGENDA_PROCESS_EVERY_MS: '200',
        CRON_ALLOW_SECONDS: 'true',
        CRON_MIN_INTERVAL_SECONDS: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    stopService = () => child.exitCode === null && child.kill('SIGKILL');
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = once(child, 'exit').then(([code]) => code as number | null);

    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.ok, {
      timeoutMs: 30_000,
      what: `the service under Bun; output: ${output}`,
    });
    // The process serving is really Bun, not a Node that happened to be on the PATH.
    expect(readlinkSync(`/proc/${child.pid}/exe`)).toBe(realpathSync(bun));
    const api = createCronClient({
      baseUrl: base,
      getToken: () => sign({ sub: 'bun-user', exp: Math.floor(Date.now() / 1000) + 600 }, SECRET, 'HS256'),
    });
    api.use(contractCheck);

    const { data: job, response } = await api.POST('/api/cron/jobs', {
      body: {
        name: 'bun-smoke',
        type: 'generateReport',
        cron: '*/2 * * * * *',
        payload: { type: 'runs', period: 'day' },
      },
    });
    expect(response.status).toBe(201);
    const { data: page } = await api.GET('/api/cron/jobs', { params: { query: {} } });
    expect(page!.items.map((j) => j.id)).toEqual([job!.id]);

    const run = await waitFor(
      async () =>
        (await api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id: job!.id } } })).data?.items.find(
          (r) => r.status === 'succeeded',
        ),
      { what: 'a scheduled run to succeed under Bun' },
    );
    expect(run).toMatchObject({ trigger: 'schedule', error: null });
    expect(run.result).toMatchObject({ reportId: expect.any(String) });

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('"msg":"stopped"');
  }, 90_000);
});
