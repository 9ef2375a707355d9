import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
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
let workerPorts: number[];
let env: NodeJS.ProcessEnv;
/** How long `pm2 start` took: with wait_ready it returns only once every app said it is ready. */
let startMs: number;

const pm2 = (...args: string[]) => run(join('node_modules', '.bin', 'pm2'), args, { env, timeout: 60_000 });

/** Whether nothing listens on 127.0.0.1:`port` now. */
const portFree = (port: number) =>
  new Promise<boolean>((ok) => {
    const probe = createServer();
    probe.once('error', () => ok(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => ok(true)));
  });

/** Two free ports in a row, for two worker instances (PM2 gives instance i the base port + i). */
async function freePortPair(): Promise<number> {
  return waitFor(async () => {
    const base = await freePort();
    return base < 65535 && (await portFree(base + 1)) && base;
  });
}

const WORKERS = 2;
const scrapeWorker = async (p: number) => (await fetch(`http://127.0.0.1:${p}/metrics`)).text();
/** The sum of one series over the scrapes, 0 where absent. */
const total = (texts: string[], series: string) =>
  texts
    .flatMap((t) => t.split('\n'))
    .filter((l) => l.startsWith(`${series} `))
    .reduce((sum, l) => sum + Number(l.slice(series.length + 1)), 0);

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'pm2-home-'));
  port = await freePort();
  const base = await freePortPair();
  workerPorts = [base, base + 1];
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
    CRON_WORKERS: String(WORKERS),
    WORKER_METRICS_PORT: String(base),
  };
  const started = Date.now();
  await pm2('start', 'ecosystem.config.js');
  startMs = Date.now() - started;
});

afterAll(async () => {
  await pm2('kill').catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

describe('PM2 runs the API and the workers as apps from ecosystem.config.js', () => {
  it('counts each app online only once it serves: the API answers and every worker is healthy when pm2 start returns', async () => {
    // No waiting here: wait_ready held `pm2 start` until each process sent 'ready'.
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    for (const p of workerPorts) {
      const health = await fetch(`http://127.0.0.1:${p}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({
        status: 'ok',
        checks: { database: true, agenda: true, poll: true },
        runsInProgress: 0,
      });
    }
    const { stdout } = await pm2('jlist');
    const apps = (JSON.parse(stdout) as { name: string; pid: number; pm2_env: { status: string } }[]).map((a) => ({
      name: a.name,
      status: a.pm2_env.status,
      pid: a.pid,
    }));
    expect(apps.map((a) => [a.name, a.status])).toEqual([
      ['cron-jobs-api', 'online'],
      ...Array.from({ length: WORKERS }, () => ['cron-jobs-worker', 'online']),
    ]);
    expect(new Set(apps.map((a) => a.pid)).size).toBe(1 + WORKERS);
    console.info(`pm2 start with wait_ready returned after ${startMs} ms`);
  });

  it('fires jobs from the workers, and every worker serves its run counters, fire lag and dispatcher state', async () => {
    const base = `http://127.0.0.1:${port}`;
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
      { timeoutMs: 30_000, what: 'runs executed by the PM2 workers' },
    );
    expect(new Set(runs.map((r) => r.scheduledFor)).size).toBe(runs.length);
    expect(runs.every((r) => r.trigger === 'schedule')).toBe(true);

    // The runs are counted where they ran: on the workers' own listeners.
    const texts = await waitFor(
      async () => {
        const t = await Promise.all(workerPorts.map(scrapeWorker));
        return total(t, 'cron_runs_total{type="generateReport",outcome="succeeded"}') >= 2 && t;
      },
      { what: "two succeeded runs on the workers' /metrics" },
    );
    expect(total(texts, 'cron_fire_lag_seconds_count{type="generateReport"}')).toBeGreaterThanOrEqual(2);
    // The firing partitions are shared: both workers hold some, and together all of them.
    const held = await waitFor(
      async () => {
        const t = await Promise.all(workerPorts.map(scrapeWorker));
        const counts = t.map((x) => Number(x.match(/^cron_partitions_held\{worker="[^"]+"\} (\d+)$/m)?.[1]));
        return counts.every((n) => n > 0) && counts.reduce((a, b) => a + b, 0) === 16 && counts;
      },
      { what: 'both workers to hold partitions' },
    );
    expect(held).toEqual([8, 8]);
    for (const t of texts) expect(t).toMatch(/^cron_worker_up\{worker="[^"]+"\} 1$/m);
  });

  it('writes no error lines, and logs carry ISO times', async () => {
    const logs = join(home, 'logs');
    const files = await readdir(logs);
    const errorLogs = files.filter((f) => f.includes('-error'));
    expect(errorLogs).toHaveLength(1 + WORKERS);
    for (const f of errorLogs) expect({ f, text: await readFile(join(logs, f), 'utf8') }).toEqual({ f, text: '' });
    const out = await readFile(join(logs, files.find((f) => f.startsWith('cron-jobs-worker-out'))!), 'utf8');
    const started = out.split('\n').find((l) => l.includes('"msg":"worker started"'))!;
    expect(JSON.parse(started).time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});
