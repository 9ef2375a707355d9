import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sign } from 'hono/jwt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCronClient } from '../generated/client.js';
import { contractCheck } from './helpers/contract.js';
import { freePort, uriWithDb, waitFor } from './helpers/harness.js';

const run = promisify(execFile);
const SECRET = 'pm2-test-secret-0123456789abcdef-0123456789';

let home: string;
let port: number;
let env: NodeJS.ProcessEnv;

const pm2 = (...args: string[]) => run(join('node_modules', '.bin', 'pm2'), args, { env, timeout: 60_000 });

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pm2-home-'));
  port = await freePort();
  env = {
    ...process.env,
    PM2_HOME: home,
    MONGODB_URI: uriWithDb(inject('mongoUri'), `t_pm2_${randomUUID().slice(0, 8)}`),
    PORT: String(port),
    JWT_SECRET: SECRET,
    CRON_ALLOW_SECONDS: 'true',
    CRON_MIN_INTERVAL_SECONDS: '1',
    AGENDA_PROCESS_EVERY_MS: '200',
    SHUTDOWN_TIMEOUT_MS: '2000',
  };
  await pm2('start', 'ecosystem.config.js');
});

afterAll(async () => {
  await pm2('kill').catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

describe('PM2 runs the API and the worker as two apps from ecosystem.config.js', () => {
  it('serves the API from one process and fires jobs from the other', async () => {
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.ok, {
      timeoutMs: 40_000,
      what: 'the API under PM2',
    });

    const { stdout } = await pm2('jlist');
    const apps = (JSON.parse(stdout) as { name: string; pid: number; pm2_env: { status: string } }[]).map((a) => ({
      name: a.name,
      status: a.pm2_env.status,
      pid: a.pid,
    }));
    expect(apps.map((a) => [a.name, a.status])).toEqual([
      ['cron-jobs-api', 'online'],
      ['cron-jobs-worker', 'online'],
    ]);
    expect(apps[0]!.pid).not.toBe(apps[1]!.pid);

    const token = () => sign({ sub: 'pm2-user', exp: Math.floor(Date.now() / 1000) + 600 }, SECRET, 'HS256');
    const api = createCronClient({ baseUrl: base, getToken: token });
    api.use(contractCheck);
    const { data: job } = await api.POST('/api/cron/jobs', {
      body: {
        name: 'under-pm2',
        type: 'generateReport',
        cron: '* * * * * *',
        timezone: 'UTC',
        payload: { type: 'runs', period: 'day' },
      },
    });
    const runs = await waitFor(
      async () => {
        const { data } = await api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id: job!.id } } });
        return data!.items.filter((r) => r.status === 'succeeded').length >= 2 && data!.items;
      },
      { timeoutMs: 30_000, what: 'runs executed by the PM2 worker' },
    );
    expect(new Set(runs.map((r) => r.scheduledFor)).size).toBe(runs.length);
    expect(runs.every((r) => r.trigger === 'schedule')).toBe(true);
  });
});
