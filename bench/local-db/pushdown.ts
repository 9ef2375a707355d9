/**
 * Equality pushdown on indexed fields, before and after the patch (issue 13): two FerretDB builds
 * over ONE PostgreSQL cluster, queried alternately, with an empty run history and with
 * `--runs` (default 200 000) historical runs in `cron_job_runs`.
 *
 *   npx tsx bench/local-db/pushdown.ts --before /path/to/unpatched-ferretdb [--after .local/bin/ferretdb]
 *     [--runs 200000] [--reps 30] [--out bench/local-db/pushdown-results.json]
 *
 * The "before" binary is a build of the overlay without this patch (e.g. main's .local/bin/ferretdb,
 * copied aside before building this branch). Both builds store documents identically, so one seeds
 * and both read. The plan of each query is FerretDB's `explain` (PostgreSQL's EXPLAIN, no ANALYZE).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Db, type Document, MongoClient, ObjectId } from 'mongodb';
import { stopChild } from '../../src/db/child.js';
import { freePort } from '../../src/db/local-server.js';
import { startPostgres } from '../../src/db/postgres.js';

const { values: opts } = parseArgs({
  options: {
    before: { type: 'string' },
    after: { type: 'string', default: '.local/bin/ferretdb' },
    runs: { type: 'string', default: '200000' },
    reps: { type: 'string', default: '30' },
    out: { type: 'string', default: 'bench/local-db/pushdown-results.json' },
  },
});
if (!opts.before) throw new Error('--before <unpatched ferretdb binary> is required');

const RUNS_PER_JOB = 100;
const JOBS = 10_000;
const OWNERS = 500; // 20 jobs per owner
const STATUSES = ['succeeded', 'failed', 'skipped'];

interface Server {
  name: string;
  child: ChildProcess;
  client: MongoClient;
  db: Db;
}

async function startFerretDb(name: string, binary: string, pgUrl: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(binary, [`-listen-addr=127.0.0.1:${port}`, '-handler=postgresql', `-postgresql-url=${pgUrl}`], {
    stdio: 'ignore',
  });
  const client = new MongoClient(`mongodb://127.0.0.1:${port}/`, { serverSelectionTimeoutMS: 20_000 });
  await client.connect();
  return { name, child, client, db: client.db('cronjobs') };
}

async function stopFerretDb(server: Server): Promise<void> {
  await server.client.close();
  await stopChild(server.child, 'SIGTERM');
}

/** The indexes of src/models (read, not imported: the bench needs only their shape). */
async function createCollections(db: Db): Promise<void> {
  const runs = db.collection('cron_job_runs');
  await runs.createIndex({ jobId: 1, scheduledFor: 1, trigger: 1 }, { unique: true });
  await runs.createIndex({ jobId: 1, _id: -1 });
  await runs.createIndex({ ownerId: 1, scheduledFor: 1 });
  await runs.createIndex({ jobId: 1, status: 1 });
  await runs.createIndex({ status: 1, heartbeatAt: 1 });
  const jobs = db.collection('cron_jobs');
  await jobs.createIndex({ ownerId: 1, name: 1 }, { unique: true });
  await jobs.createIndex({ ownerId: 1, _id: 1 });
}

function run(jobId: ObjectId, ownerId: string, i: number, status: string): Document {
  const scheduledFor = new Date(Date.UTC(2026, 0, 1) + i * 60_000);
  return {
    jobId,
    ownerId,
    type: 'http-ping',
    scheduledFor,
    trigger: 'schedule',
    status,
    startedAt: scheduledFor,
    finishedAt: scheduledFor,
    durationMs: 12,
    error: null,
    result: { ok: true },
    worker: 'w1',
    attempts: 1,
    heartbeatAt: status === 'running' ? new Date() : null,
    createdAt: scheduledFor,
    updatedAt: scheduledFor,
  };
}

/** The probed job's runs, its owner's jobs and a few running runs: the same in both phases. */
async function seedProbed(db: Db, jobIds: ObjectId[]): Promise<void> {
  await db
    .collection('cron_jobs')
    .insertMany(
      jobIds.map((_id, i) => ({ _id, ownerId: `owner-${i % OWNERS}`, name: `job-${i}`, enabled: true, type: 'x' })),
    );
  const probed = Array.from({ length: RUNS_PER_JOB }, (_, i) => run(jobIds[0]!, 'owner-0', i, STATUSES[i % 3]!));
  const running = Array.from({ length: 5 }, (_, i) => run(jobIds[1]!, 'owner-1', 10_000 + i, 'running'));
  await db.collection('cron_job_runs').insertMany([...probed, ...running]);
}

/** History: RUNS_PER_JOB finished runs for other jobs, up to `total` runs in all. */
async function seedHistory(db: Db, jobIds: ObjectId[], total: number): Promise<void> {
  const runs = db.collection('cron_job_runs');
  let have = await runs.countDocuments({});
  for (let job = 2; have < total; job++) {
    const jobId = jobIds[job % JOBS]!;
    const round = Math.floor(job / JOBS);
    const batch = Array.from({ length: Math.min(RUNS_PER_JOB, total - have) }, (_, i) =>
      run(jobId, `owner-${(job % JOBS) % OWNERS}`, round * 1_000 + i, STATUSES[i % 3]!),
    );
    await runs.insertMany(batch, { ordered: false });
    have += batch.length;
  }
}

interface Probe {
  name: string;
  collection: string;
  filter: Document;
  sort?: Document;
  limit?: number;
}

function probes(jobIds: ObjectId[]): Probe[] {
  return [
    {
      name: 'runs find({jobId}).sort({_id:-1}).limit(21)',
      collection: 'cron_job_runs',
      filter: { jobId: jobIds[0] },
      sort: { _id: -1 },
      limit: 21,
    },
    { name: "runs find({status:'running'})", collection: 'cron_job_runs', filter: { status: 'running' } },
    { name: "runs find({status:'queued'})", collection: 'cron_job_runs', filter: { status: 'queued' } },
    { name: 'jobs find({ownerId})', collection: 'cron_jobs', filter: { ownerId: 'owner-7' } },
    { name: 'runs find({ownerId:{$eq}})', collection: 'cron_job_runs', filter: { ownerId: { $eq: 'owner-0' } } },
  ];
}

async function once(server: Server, probe: Probe): Promise<{ ms: number; n: number }> {
  const started = process.hrtime.bigint();
  let cursor = server.db.collection(probe.collection).find(probe.filter);
  if (probe.sort) cursor = cursor.sort(probe.sort);
  if (probe.limit) cursor = cursor.limit(probe.limit);
  const docs = await cursor.toArray();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, n: docs.length };
}

/** PostgreSQL's plan nodes (type and index) for a probe, as FerretDB's explain reports them. */
async function plan(server: Server, probe: Probe): Promise<string> {
  const reply = await server.db.command({
    explain: { find: probe.collection, filter: probe.filter },
    verbosity: 'queryPlanner',
  });
  const nodes: string[] = [];
  const walk = (node: Document) => {
    nodes.push(node['Index Name'] ? `${node['Node Type']} ${node['Index Name']}` : node['Node Type']);
    for (const child of (node.Plans as Document[] | undefined) ?? []) walk(child);
  };
  walk((reply.queryPlanner as Document).Plan);
  return nodes.join(' > ');
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Each probe `reps` times on each server, alternating server by server, after 3 warm-ups each. */
async function measure(servers: Server[], jobIds: ObjectId[], reps: number): Promise<Document[]> {
  const rows: Document[] = [];
  for (const probe of probes(jobIds)) {
    const times: Record<string, number[]> = Object.fromEntries(servers.map((s) => [s.name, []]));
    const counts: Record<string, number> = {};
    for (const s of servers) for (let i = 0; i < 3; i++) await once(s, probe);
    for (let i = 0; i < reps; i++)
      for (const s of servers) {
        const { ms, n } = await once(s, probe);
        times[s.name]!.push(ms);
        counts[s.name] = n;
      }
    const row: Document = { probe: probe.name };
    for (const s of servers)
      row[s.name] = { medianMs: +median(times[s.name]!).toFixed(2), docs: counts[s.name], plan: await plan(s, probe) };
    if (new Set(Object.values(counts)).size !== 1)
      throw new Error(`builds disagree on ${probe.name}: ${JSON.stringify(counts)}`);
    console.log(JSON.stringify(row));
    rows.push(row);
  }
  return rows;
}

const dir = mkdtempSync(join(tmpdir(), 'pushdown-bench-'));
const postgres = await startPostgres(join(dir, 'postgresql'));
let servers: Server[] = [];
try {
  const jobIds = Array.from({ length: JOBS }, () => new ObjectId());
  const seeder = await startFerretDb('after', opts.after, postgres.url);
  await createCollections(seeder.db);
  await seedProbed(seeder.db, jobIds);
  await stopFerretDb(seeder);
  const reps = Number(opts.reps);
  servers = [
    await startFerretDb('before', opts.before, postgres.url),
    await startFerretDb('after', opts.after, postgres.url),
  ];
  console.log('empty history');
  const empty = await measure(servers, jobIds, reps);
  const total = Number(opts.runs);
  const seeding = Date.now();
  await seedHistory(servers[1]!.db, jobIds, total);
  console.log(`seeded ${total} runs in ${Date.now() - seeding} ms`);
  console.log(`${total} runs`);
  const full = await measure(servers, jobIds, reps);
  writeFileSync(
    opts.out,
    `${JSON.stringify({ runs: total, reps, emptyHistory: empty, fullHistory: full }, null, 2)}\n`,
  );
} finally {
  for (const s of servers) await stopFerretDb(s);
  await postgres.stop();
  rmSync(dir, { recursive: true, force: true });
}
