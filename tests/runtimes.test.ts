import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sign } from 'hono/jwt';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type CronClient, createCronClient } from '../generated/client.js';
import { launch, startCluster } from './helpers/cluster.js';
import { contractCheck } from './helpers/contract.js';
import { freePort, RELAXED_GUARDS, uriWithDb, waitFor } from './helpers/harness.js';
import { NODE_VERSIONS, projectBun, type Runtime, registryNode, thisNode } from './helpers/runtimes.js';

// The smoke suite of every runtime the service supports (README, "Runtimes"): the same walk on
// each, one runtime after another so their processes do not compete for the CPU.
const RUNTIMES: [label: string, resolve: () => Promise<Runtime>][] = [
  [`the Node running the tests (${thisNode.name})`, async () => thisNode],
  [`Node ${NODE_VERSIONS[22]} from the npm registry`, () => registryNode(22)],
  [`Node ${NODE_VERSIONS[24]} from the npm registry`, () => registryNode(24)],
  ['the Bun of the bun dev dependency', projectBun],
];

const SECRET = 'runtimes-smoke-secret-0123456789abcdef';
/** Fast polling and seconds crons, so a job fires within a few seconds. */
const FAST = { CRON_ALLOW_SECONDS: 'true', CRON_MIN_INTERVAL_SECONDS: '1', AGENDA_PROCESS_EVERY_MS: '200' };
const EVERY_2_SECONDS = {
  type: 'generateReport',
  cron: '*/2 * * * * *',
  payload: { type: 'runs', period: 'day' },
} as const;

const mongo = new MongoClient(inject('mongoUri'));
const databases: string[] = [];
afterAll(async () => {
  for (const db of databases)
    await mongo
      .db(db)
      .dropDatabase()
      .catch(() => undefined);
  await mongo.close();
});

/** The process at `baseUrl` runs on `runtime`: its metrics show that runtime's `process.version`. */
async function expectServedBy(baseUrl: string, runtime: Runtime) {
  const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
  expect(metrics).toContain(`nodejs_version_info{version="${runtime.processVersion}"`);
}

/** Creates a job firing every 2 s and waits until its first scheduled run succeeded. */
async function createAndSeeItFire(api: CronClient, name: string) {
  const { data: job, response } = await api.POST('/api/cron/jobs', { body: { name, ...EVERY_2_SECONDS } });
  expect(response.status).toBe(201);
  const run = await waitFor(
    async () =>
      (await api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id: job!.id } } })).data?.items.find(
        (r) => r.trigger === 'schedule' && r.status === 'succeeded',
      ),
    { what: `a scheduled run of ${name} to succeed` },
  );
  expect(run).toMatchObject({ error: null, result: { reportId: expect.any(String) } });
  return { job: job!, run };
}

for (const [label, resolveRuntime] of RUNTIMES) {
  describe(`on ${label}`, () => {
    let runtime: Runtime;
    // The registry's Nodes are installed on first use (about 30 MB each, cached in .local/runtimes/).
    beforeAll(async () => {
      runtime = await resolveRuntime();
    }, 300_000);

    it('npm start with its local database: create, list, fire, run-now, runs, delete; SIGTERM stops it', async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'runtime-db-'));
      const port = await freePort();
      const service = launch(
        `service on ${runtime.name}`,
        'src/main.ts',
        // debug: the local database's clean stop is logged at that level.
        {
          LOCAL_DB_DIR: dataDir,
          PORT: String(port),
          JWT_SECRET: SECRET,
          LOG_LEVEL: 'debug',
          ...FAST,
          ...RELAXED_GUARDS,
        },
        runtime,
      );
      try {
        // Starts FerretDB first (built with Go if no earlier test built it).
        await service.waitFor('"msg":"API listening', 180_000);
        const baseUrl = `http://127.0.0.1:${port}`;
        await expectServedBy(baseUrl, runtime);
        const api = createCronClient({
          baseUrl,
          getToken: () => sign({ sub: 'runtime-user', exp: Math.floor(Date.now() / 1000) + 600 }, SECRET, 'HS256'),
        });
        api.use(contractCheck);

        const { job } = await createAndSeeItFire(api, 'smoke');
        const { data: page } = await api.GET('/api/cron/jobs', { params: { query: {} } });
        expect(page!.items.map((j) => j.id)).toEqual([job.id]);

        const queued = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job.id } } });
        expect(queued.response.status).toBe(202);
        const runs = await waitFor(
          async () => {
            const { data } = await api.GET('/api/cron/jobs/{id}/runs', { params: { path: { id: job.id } } });
            return data?.items.some((r) => r.id === queued.data!.id && r.status === 'succeeded') && data.items;
          },
          { what: 'the run-now run to succeed' },
        );
        expect(new Set(runs.map((r) => r.trigger))).toEqual(new Set(['schedule', 'manual']));

        const deleted = await api.DELETE('/api/cron/jobs/{id}', { params: { path: { id: job.id } } });
        expect(deleted.response.status).toBe(204);
        const gone = await api.GET('/api/cron/jobs/{id}', { params: { path: { id: job.id } } });
        expect(gone.response.status).toBe(404);

        service.child.kill('SIGTERM');
        expect(await service.exited).toBe(0);
        expect(service.output()).toContain('"msg":"local database stopped"');
        expect(service.output()).toContain('"msg":"stopped"');
      } finally {
        if (service.child.exitCode === null) service.child.kill('SIGKILL');
        await rm(dataDir, { recursive: true, force: true });
      }
    }, 240_000);

    it('npm run api and npm run worker as two processes on one database: the worker fires a job', async () => {
      const dbName = `t_rt_${randomUUID().replace(/-/g, '').slice(0, 8)}`;
      databases.push(dbName);
      const cluster = await startCluster({
        uri: uriWithDb(inject('mongoUri'), dbName),
        workers: 1,
        runtime,
        env: FAST,
      });
      try {
        await expectServedBy(cluster.baseUrl, runtime);
        const api = await cluster.client('runtime-worker-user');
        api.use(contractCheck);
        const { run } = await createAndSeeItFire(api, 'smoke-worker');
        // Executed by the worker process: the API process runs no jobs.
        expect(await cluster.models.Run.findById(run.id).lean()).toMatchObject({ worker: 'worker-1' });
      } finally {
        await cluster.stop();
      }
      for (const p of [cluster.api, ...cluster.workers]) {
        expect(await p.exited, `${p.name}'s exit code; output: ${p.output().slice(-2000)}`).toBe(0);
        expect(p.output()).toContain('"msg":"stopped"');
      }
    }, 120_000);
  });
}
