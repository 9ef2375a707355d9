// Issue 5, points 1, 6 (API part) and 7 (API part): our API against a bare node:http + mongodb
// baseline doing the same database operation per route, both as separate processes on one
// FerretDB, loaded with autocannon at a fixed concurrency.
// npx tsx bench/api.ts [--quick] [--out file.json]
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { SignJWT } from 'jose';
import { type Db, ObjectId } from 'mongodb';
import type { Connection } from 'mongoose';
import { connectDb, freePort, startLocalDb } from '../src/db/index.js';
import { jobInput, removeJobsOf } from './lib/api-fixtures.js';
import {
  type Commands,
  commandTotals,
  describeCommands,
  commandsPer as perRequest,
  commandSum as sum,
  two,
} from './lib/db-commands.js';
import { isMain, suiteMain } from './lib/main.js';
import type { Comparison, Plot, Suite, SuiteOptions, SuiteResult } from './lib/report.js';
import { ownerOf, seedJobs } from './lib/seed.js';
import { type ServiceProcess, startServiceProcess } from './lib/service-process.js';
import { compare, figure, quantile } from './lib/stats.js';

const DATA_DIR = '.local/bench-api-db';
const SECRET = 'bench-api-secret-0123456789abcdef-xyz';
/**
 * Concurrent connections of every run: the fixed concurrency the figures are for. Low because
 * FerretDB served the same number of queries per second to 1, 2 and 10 concurrent clients: more
 * connections only lengthen its queue, and at 10 connections and 10 000 jobs queued requests
 * passed the API's 10 s database socket timeout (MONGODB_SOCKET_TIMEOUT_MS) and failed with 503.
 */
const CONNECTIONS = 4;
/** Seeded jobs per owner: lists return the same page size at every scale, and under the 50-job cap. */
const JOBS_PER_OWNER = 40;
/** Posted jobs per fresh owner, so no POST meets the 50-job cap. */
const POSTS_PER_OWNER = 40;
/** A batch that takes longer than this is stopped (its figures then cover what completed). */
const RUN_GUARD_MS = 90_000;
/** Queries per row of the probe of single FerretDB queries (probeQueries). */
const PROBE_QUERIES = 3;
/** Requests per endpoint that warm a process up before anything is measured. */
const WARM_UP = CONNECTIONS;
/** Target length of one batch of a run. */
const BATCH_SECONDS = 1;
/** Limits high enough never to refuse, so the limiter does all its counting (in memory, published in batches). */
const NEVER_REFUSE = '1000000000';

interface Plan {
  jobs: number;
  /** Smaller stored-job counts measured first for the growth plot; `jobs` is its last point. */
  growth: number[];
  rounds: number;
  /** Target length of one run (one target, one endpoint). */
  seconds: number;
  growthSeconds: number;
}
const FULL: Plan = { jobs: 10_000, growth: [100, 1_000], rounds: 3, seconds: 3, growthSeconds: 1 };
const QUICK: Plan = { jobs: 1_000, growth: [100], rounds: 1, seconds: 1.25, growthSeconds: 0.75 };

// --- autocannon (CommonJS without type declarations: the part of its API used here) ---

interface LoadRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}
interface LoadOptions {
  url: string;
  connections: number;
  amount: number;
  /** Seconds before a request counts as timed out. */
  timeout: number;
  sampleInt: number;
  requests: { setupRequest: (request: LoadRequest) => LoadRequest }[];
}
interface LoadResult {
  errors: number;
  timeouts: number;
  statusCodeStats: Record<string, { count: number }>;
}
interface LoadTracker extends PromiseLike<LoadResult> {
  on(event: 'response', listener: (client: unknown, status: number, bytes: number, ms: number) => void): void;
  stop(): void;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (options: LoadOptions) => LoadTracker;

// --- what is measured ---

interface Target {
  name: string;
  url: string;
  proc: ServiceProcess;
}

interface Fixture {
  /** Every seeded job with its owner, to pick from at random. */
  jobs: { id: string; owner: string }[];
  tokens: Map<string, string>;
}

type EndpointKey = 'get' | 'list' | 'create';
interface Endpoint {
  key: EndpointKey;
  label: string;
  read: boolean;
  /** Prepares a run of `amount` requests and returns the request factory autocannon calls for each. */
  prepare(amount: number): Promise<() => LoadRequest>;
}

interface RunFigures {
  ok: number;
  failed: number;
  statuses: string;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  /** Database commands per request, by command name (FerretDB's serverStatus counters). */
  commands: Commands;
}

const sign = (owner: string) =>
  new SignJWT({ sub: owner })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(SECRET));

/** The same request goes to both servers: ours reads the token, the baseline the plain owner header. */
const asOwner = (owner: string, token: string) => ({ authorization: `Bearer ${token}`, 'x-owner': owner });

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

function endpoints(fixture: Fixture): Endpoint[] {
  const tokenOf = (owner: string) => fixture.tokens.get(owner)!;
  let posted = 0;
  return [
    {
      key: 'get',
      label: 'GET /jobs/{id}',
      read: true,
      prepare: async () => () => {
        const job = pick(fixture.jobs);
        return { method: 'GET', path: `/api/cron/jobs/${job.id}`, headers: asOwner(job.owner, tokenOf(job.owner)) };
      },
    },
    {
      key: 'list',
      label: 'GET /jobs?limit=50',
      read: true,
      prepare: async () => () => {
        const { owner } = pick(fixture.jobs);
        return { method: 'GET', path: '/api/cron/jobs?limit=50', headers: asOwner(owner, tokenOf(owner)) };
      },
    },
    {
      key: 'create',
      label: 'POST /jobs',
      read: false,
      // Fresh owners, POSTS_PER_OWNER each, signed before the run (autocannon asks synchronously).
      // Connections may build one request each beyond the amount.
      async prepare(amount) {
        const first = posted;
        const owners = Array.from(
          { length: Math.ceil((amount + CONNECTIONS) / POSTS_PER_OWNER) + 1 },
          (_, k) => `${POST_OWNER_PREFIX}${first}-${k}`,
        );
        const tokens = await Promise.all(owners.map(sign));
        return () => {
          const k = posted++ - first;
          const slot = Math.min(Math.floor(k / POSTS_PER_OWNER), owners.length - 1);
          return {
            method: 'POST',
            path: '/api/cron/jobs',
            headers: { ...asOwner(owners[slot]!, tokens[slot]!), 'content-type': 'application/json' },
            body: JSON.stringify(jobInput(k)),
          };
        };
      },
    },
  ];
}

// --- one run ---

interface Batch {
  latencies: number[];
  failed: number;
  statuses: Map<string, number>;
  seconds: number;
}

/**
 * `amount` requests from CONNECTIONS connections, every one answered before it returns: a request
 * cut off by a time limit would go on loading the database during the next measurement. Latencies
 * are of 2xx answers, as autocannon's; the time runs from the start to the last answer.
 */
async function batch(target: Target, next: () => LoadRequest, amount: number): Promise<Batch> {
  const out: Batch = { latencies: [], failed: 0, statuses: new Map(), seconds: 0 };
  let lastAnswer = 0;
  const started = performance.now();
  const tracker = autocannon({
    url: target.url,
    connections: CONNECTIONS,
    amount,
    timeout: RUN_GUARD_MS / 1000,
    sampleInt: 50,
    requests: [{ setupRequest: (request) => ({ ...request, ...next() }) }],
  });
  tracker.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) out.latencies.push(ms);
    else out.failed++;
    out.statuses.set(String(status), (out.statuses.get(String(status)) ?? 0) + 1);
    lastAnswer = performance.now();
  });
  const guard = setTimeout(() => tracker.stop(), RUN_GUARD_MS);
  const result = await tracker;
  clearTimeout(guard);
  out.failed += result.errors;
  if (result.errors) out.statuses.set('connection error', result.errors);
  out.seconds = Math.max(lastAnswer - started, 1) / 1000;
  return out;
}

/**
 * A measurement of about `seconds`: batches of about BATCH_SECONDS each, sized by the rate of the
 * previous batch of the same target, endpoint and stored count (the first is one request per
 * connection), until the time is up. So a run stays near its time even when the rate changes
 * (a batch sized by a stale rate overruns by one batch at most), and an endpoint slower than
 * the time is one batch of one request per connection.
 */
function timedRuns(db: Db) {
  const rates = new Map<string, number>();
  return async (target: Target, endpoint: Endpoint, seconds: number, stored: number): Promise<RunFigures> => {
    const key = `${target.name} ${endpoint.key} ${stored}`;
    const all: Batch = { latencies: [], failed: 0, statuses: new Map(), seconds: 0 };
    const before = await commandTotals(db);
    const deadline = performance.now() + seconds * 1000;
    do {
      const rate = rates.get(key);
      const amount = rate === undefined ? CONNECTIONS : Math.max(CONNECTIONS, Math.round(rate * BATCH_SECONDS));
      const b = await batch(target, await endpoint.prepare(amount), amount);
      rates.set(key, (b.latencies.length + b.failed) / b.seconds);
      all.latencies.push(...b.latencies);
      all.failed += b.failed;
      all.seconds += b.seconds;
      for (const [status, n] of b.statuses) all.statuses.set(status, (all.statuses.get(status) ?? 0) + n);
    } while (performance.now() < deadline);
    const answered = all.latencies.length + all.failed;
    return {
      ok: all.latencies.length,
      failed: all.failed,
      statuses: [...all.statuses].map(([status, n]) => `${status} x${n}`).join(', '),
      seconds: all.seconds,
      rps: all.latencies.length / all.seconds,
      p50: quantile(all.latencies, 0.5),
      p99: quantile(all.latencies, 0.99),
      commands: perRequest(before, await commandTotals(db), answered),
    };
  };
}

// --- the suite ---

async function seedBatch(conn: Connection, fixture: Fixture, n: number, tag: string): Promise<void> {
  const owners = Math.ceil(n / JOBS_PER_OWNER);
  const ownerPrefix = `${tag}-owner-`;
  const ids = await seedJobs(conn, n, { cron: (i) => `${i % 60} ${i % 24} * * *`, owners, ownerPrefix });
  for (const [i, id] of ids.entries()) fixture.jobs.push({ id, owner: ownerOf(i, owners, ownerPrefix) });
  for (let k = 0; k < owners; k++) fixture.tokens.set(`${ownerPrefix}${k}`, await sign(`${ownerPrefix}${k}`));
}

/** Owners of the jobs POST runs store, removed after each run. */
const POST_OWNER_PREFIX = 'post-';
const removePosted = (conn: Connection) => removeJobsOf(conn, POST_OWNER_PREFIX);

async function startTargets(uri: string): Promise<{ ours: Target; unlimited: Target; baseline: Target }> {
  const api = async (name: string, limit: string) => {
    const port = await freePort();
    const env = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      MONGODB_URI: uri,
      JWT_SECRET: SECRET,
      EMAIL_ALLOWED_DOMAINS: 'example.com',
      RATE_LIMIT_PER_USER: limit,
      RATE_LIMIT_PER_IP: limit,
      RATE_LIMIT_RUN_NOW_PER_USER: limit,
    };
    const url = `http://127.0.0.1:${port}`;
    return {
      name,
      url,
      proc: await startServiceProcess({ name, entry: 'src/server.ts', env, ready: { url: `${url}/healthz` } }),
    };
  };
  const bare = async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { NODE_ENV: 'production', MONGODB_URI: uri, PORT: String(port) };
    return {
      name: 'baseline',
      url,
      proc: await startServiceProcess({
        name: 'baseline',
        entry: 'bench/baselines/bare-http.ts',
        env,
        ready: { url: `${url}/healthz` },
      }),
    };
  };
  // One API first: both would otherwise create the same indexes at once.
  const ours = await api('ours', NEVER_REFUSE);
  const [unlimited, baseline] = await Promise.all([api('ours, rate limits off', '0'), bare()]);
  return { ours, unlimited, baseline };
}

/** One measured run: where, against what, of what. */
interface RunRecord {
  stored: number;
  phase: 'growth' | 'main';
  target: string;
  endpoint: EndpointKey;
  f: RunFigures;
}

interface ProbeRow {
  query: string;
  ms: number;
}

/**
 * What FerretDB takes for the single queries behind the costs measured, one at a time (no
 * queue): GET's lookup {_id, ownerId} against {_id} alone, and the scan a POST makes (the cap).
 */
async function probeQueries(db: Db, fixture: Fixture, queries: number): Promise<ProbeRow[]> {
  const jobs = db.collection('cron_jobs');
  const sample = Array.from({ length: queries }, () => pick(fixture.jobs));
  const timed = async (query: string, run: (job: Fixture['jobs'][number]) => Promise<unknown>) => {
    const ms: number[] = [];
    for (const job of sample) {
      const started = performance.now();
      await run(job);
      ms.push(performance.now() - started);
    }
    return { query, ms: quantile(ms, 0.5) };
  };
  return [
    await timed('GET /jobs/{id}: findOne {_id, ownerId} (ours and the baseline)', (job) =>
      jobs.findOne({ _id: new ObjectId(job.id), ownerId: job.owner }),
    ),
    await timed('the same job by findOne {_id} alone', (job) => jobs.findOne({ _id: new ObjectId(job.id) })),
    await timed('POST, the 50-job cap: countDocuments {ownerId}', (job) => jobs.countDocuments({ ownerId: job.owner })),
  ];
}

export const run: Suite = async ({ quick, log }: SuiteOptions) => {
  const plan = quick ? QUICK : FULL;
  await rm(DATA_DIR, { recursive: true, force: true });
  const local = await startLocalDb(DATA_DIR);
  const conn = await connectDb(local.uri, {
    MONGODB_SERVER_SELECTION_TIMEOUT_MS: 5000,
    MONGODB_SOCKET_TIMEOUT_MS: 120_000,
  });
  let targets: Awaited<ReturnType<typeof startTargets>> | undefined;
  try {
    const fixture: Fixture = { jobs: [], tokens: new Map() };
    const [started] = await Promise.all([
      startTargets(local.uri),
      seedBatch(conn, fixture, plan.growth[0] ?? plan.jobs, 'g0'),
    ]);
    targets = started;
    const { ours, unlimited, baseline } = targets;
    log(`API, its rate-limit-free twin and the baseline started; ${fixture.jobs.length} jobs stored`);
    const eps = endpoints(fixture);
    // Unmeasured: the first requests of a process compile its code paths.
    for (const target of [ours, unlimited, baseline]) {
      for (const endpoint of eps) await batch(target, await endpoint.prepare(WARM_UP), WARM_UP);
    }
    await removePosted(conn);
    log('processes warmed up');

    const records: RunRecord[] = [];
    const timed = timedRuns(conn.db!);
    const measure = async (phase: RunRecord['phase'], target: Target, endpoint: Endpoint, seconds: number) => {
      const f = await timed(target, endpoint, seconds, fixture.jobs.length);
      records.push({ stored: fixture.jobs.length, phase, target: target.name, endpoint: endpoint.key, f });
      log(
        `${fixture.jobs.length} jobs, ${target.name} ${endpoint.label}: ${f.rps.toFixed(1)} req/s, p50 ${f.p50.toFixed(1)} ms, p99 ${f.p99.toFixed(1)} ms, answers ${f.statuses}; per request: ${describeCommands(f.commands)}`,
      );
      if (endpoint.key === 'create') await removePosted(conn);
    };

    // Growth: short runs of the reads at each smaller count, then the stored count grows.
    for (const [i, size] of plan.growth.entries()) {
      for (const endpoint of eps.filter((e) => e.read)) {
        for (const target of i % 2 ? [baseline, unlimited, ours] : [ours, unlimited, baseline])
          await measure('growth', target, endpoint, plan.growthSeconds);
      }
      await seedBatch(conn, fixture, (plan.growth[i + 1] ?? plan.jobs) - size, `g${i + 1}`);
      log(`${fixture.jobs.length} jobs stored`);
    }

    // Rounds at the full count, ours and the baseline interleaved in alternating order; the last
    // round also measures ours with rate limits off.
    for (let round = 0; round < plan.rounds; round++) {
      for (const endpoint of eps) {
        const order = round % 2 ? [baseline, ours] : [ours, baseline];
        for (const target of round === plan.rounds - 1 ? [...order, unlimited] : order)
          await measure('main', target, endpoint, plan.seconds);
      }
      log(`round ${round + 1}/${plan.rounds} done`);
    }
    const rss = { ours: ours.proc.rssBytes(), baseline: baseline.proc.rssBytes() };
    const probe = await probeQueries(conn.db!, fixture, PROBE_QUERIES);
    return report(plan, eps, records, rss, probe);
  } finally {
    await Promise.all([targets?.ours.proc.stop(), targets?.unlimited.proc.stop(), targets?.baseline.proc.stop()]);
    await conn.close();
    await local.stop();
    await rm(DATA_DIR, { recursive: true, force: true });
  }
};

// --- the report ---

const OURS = 'ours';
const UNLIMITED = 'ours, rate limits off';
const BASELINE = 'baseline';
const MB = 1024 * 1024;
const READ_GOAL = 0.8;
/** Issue 12: GET by id >= 0.8 x the baseline; the list and create within 2 x of the baseline's same queries. */
const GOALS: Record<EndpointKey, number> = { get: READ_GOAL, list: 0.5, create: 0.5 };
const round1 = (n: number) => Number(n.toFixed(1));
const lastOf = <T>(items: T[]) => items[items.length - 1]!;
/** Ratios keep two significant digits. */
const times = (ratio: number) => `${Number(ratio.toPrecision(2))} x`;

/** The runs of one target and endpoint, in order. */
const runsOf = (records: RunRecord[], target: string, endpoint: EndpointKey, where: (r: RunRecord) => boolean) =>
  records.filter((r) => r.target === target && r.endpoint === endpoint && where(r)).map((r) => r.f);

function withGoal(row: Comparison, key: EndpointKey): Comparison {
  if (row.ratio === undefined) return row;
  const goal = GOALS[key];
  return { ...row, goal: { text: `>= ${goal} x the baseline's throughput`, met: row.ratio >= goal } };
}

function mainRows(e: Endpoint, ours: RunFigures[], base: RunFigures[]): Comparison[] {
  const sizes = (runs: RunFigures[]) => runs.map((f) => f.ok + f.failed).join('/');
  const failed = (runs: RunFigures[]) => runs.reduce((n, f) => n + f.failed, 0);
  const runNote = `requests per run: ours ${sizes(ours)}, baseline ${sizes(base)}; failed: ours ${failed(ours)}, baseline ${failed(base)}`;
  return [
    withGoal(
      compare(
        { metric: `${e.label} requests/s`, unit: 'req/s', better: 'higher', note: runNote },
        ours.map((f) => f.rps),
        base.map((f) => f.rps),
      ),
      e.key,
    ),
    compare(
      { metric: `${e.label} p50 latency`, unit: 'ms', better: 'lower' },
      ours.map((f) => f.p50),
      base.map((f) => f.p50),
    ),
    compare(
      { metric: `${e.label} p99 latency`, unit: 'ms', better: 'lower' },
      ours.map((f) => f.p99),
      base.map((f) => f.p99),
    ),
    compare(
      {
        metric: `${e.label} database commands per request`,
        unit: 'commands',
        better: 'lower',
        note: `ours: ${describeCommands(lastOf(ours).commands)}; baseline: ${describeCommands(lastOf(base).commands)}`,
      },
      ours.map((f) => sum(f.commands)),
      base.map((f) => sum(f.commands)),
    ),
  ];
}

/** The reads at the smallest count, where the database is cheap and the service's own cost shows. */
function smallRows(e: Endpoint, small: number, records: RunRecord[]): Comparison[] {
  const at = (target: string) => runsOf(records, target, e.key, (r) => r.stored === small);
  const note = 'one short run (of the growth series)';
  return [
    withGoal(
      compare(
        { metric: `${e.label} requests/s at ${small} jobs`, unit: 'req/s', better: 'higher', note },
        at(OURS).map((f) => f.rps),
        at(BASELINE).map((f) => f.rps),
      ),
      e.key,
    ),
    withGoal(
      compare(
        { metric: `${e.label} requests/s at ${small} jobs, rate limits off`, unit: 'req/s', better: 'higher', note },
        at(UNLIMITED).map((f) => f.rps),
        at(BASELINE).map((f) => f.rps),
      ),
      e.key,
    ),
    compare(
      { metric: `${e.label} p50 latency at ${small} jobs`, unit: 'ms', better: 'lower', note },
      at(OURS).map((f) => f.p50),
      at(BASELINE).map((f) => f.p50),
    ),
  ];
}

/** Ours with and without rate limits beside the baseline, wherever all three ran (the last run of each). */
function limiterTable(eps: Endpoint[], records: RunRecord[]) {
  const sizes = [...new Set(records.map((r) => r.stored))].sort((a, b) => a - b);
  const rows = sizes.flatMap((size) =>
    eps.flatMap((e) => {
      const [on, off, base] = [OURS, UNLIMITED, BASELINE].map((t) =>
        runsOf(records, t, e.key, (r) => r.stored === size).at(-1),
      );
      if (!on || !off || !base) return [];
      return [
        [
          size,
          e.label,
          round1(on.rps),
          round1(off.rps),
          round1(base.rps),
          round1(on.p50),
          round1(off.p50),
          round1(base.p50),
          two(sum(on.commands)),
          two(sum(off.commands)),
        ],
      ];
    }),
  );
  return {
    caption:
      'What the rate limiter costs: ours with limits that never refuse, ours with all limits off, the baseline (the last run of each at that count)',
    columns: [
      'jobs',
      'endpoint',
      'req/s ours',
      'req/s limits off',
      'req/s baseline',
      'p50 ms ours',
      'p50 ms limits off',
      'p50 ms baseline',
      'commands/request ours',
      'limits off',
    ],
    rows,
  };
}

/** p50 by stored count, per target and read endpoint: the median over rounds where there are several. */
function growthLines(eps: Endpoint[], records: RunRecord[]): Plot['lines'] {
  const sizes = [...new Set(records.map((r) => r.stored))].sort((a, b) => a - b);
  return eps
    .filter((e) => e.read)
    .flatMap((e) =>
      [OURS, UNLIMITED, BASELINE].map((target) => ({
        label: `${target} ${e.label}`,
        points: sizes.map(
          (size) =>
            [size, figure(runsOf(records, target, e.key, (r) => r.stored === size).map((f) => f.p50)).median] as [
              number,
              number,
            ],
        ),
      })),
    );
}

/** The exponent k of p50 ~ jobs^k between the smallest and the largest count: 1 is linear. */
function growthExponent(points: [number, number][]): number {
  const [x0, y0] = points[0]!;
  const [x1, y1] = lastOf(points);
  return Math.log(y1 / y0) / Math.log(x1 / x0);
}

function shapeOf(k: number): string {
  if (!Number.isFinite(k)) return 'not measured';
  if (k < 0.25) return 'about flat';
  if (k < 0.8) return 'sub-linear';
  if (k <= 1.2) return 'about linear';
  return 'faster than linear';
}

function report(
  plan: Plan,
  eps: Endpoint[],
  records: RunRecord[],
  rss: { ours: number; baseline: number },
  probe: ProbeRow[],
): SuiteResult {
  const main = (target: string, e: Endpoint) => runsOf(records, target, e.key, (r) => r.phase === 'main');
  const small = plan.growth[0];
  const lines = growthLines(eps, records);
  const comparisons: Comparison[] = [
    ...eps.flatMap((e) => mainRows(e, main(OURS, e), main(BASELINE, e))),
    ...eps.map((e) =>
      withGoal(
        compare(
          {
            metric: `${e.label} requests/s, rate limits off`,
            unit: 'req/s',
            better: 'higher',
            note: 'one round (the last), against the baseline of that round',
          },
          [lastOf(main(UNLIMITED, e)).rps],
          [lastOf(main(BASELINE, e)).rps],
        ),
        e.key,
      ),
    ),
    ...(small === undefined ? [] : eps.filter((e) => e.read).flatMap((e) => smallRows(e, small, records))),
    compare(
      {
        metric: `API resident memory after the load, ${plan.jobs} jobs`,
        unit: 'MB',
        better: 'lower',
        note: 'no goal for the API (the issue sets one for the worker)',
      },
      [rss.ours / MB],
      [rss.baseline / MB],
    ),
  ];
  return {
    id: 'api',
    title: 'API throughput and latency against a bare node:http baseline',
    method:
      `Our API (\`src/server.ts\`) and a bare \`node:http\` server using the \`mongodb\` driver directly (\`bench/baselines/bare-http.ts\`: the same query per route, no validation, auth, rate limits or framework) run as separate processes on one FerretDB holding ${plan.jobs} seeded jobs (${JOBS_PER_OWNER} per owner). ` +
      `autocannon keeps ${CONNECTIONS} connections busy; each request picks a random stored job and its owner's HS256 token (POSTs go to fresh owners, and what they stored is removed after each run). ` +
      `${plan.rounds} round(s) of about ${plan.seconds} s per run, ours and the baseline interleaved in alternating order; a run is made of batches that are answered in full, so no request outlives its run. Ours runs with rate limits of ${NEVER_REFUSE} (counted, never refusing); a twin process with all rate limits off runs in the last round and in the growth series. ` +
      `Database commands per request come from FerretDB's serverStatus counters over each run. Growth: short runs (${plan.growthSeconds} s) of the reads at ${plan.growth.join(' and ')} stored jobs before the count grows to ${plan.jobs}.`,
    comparisons,
    tables: [
      limiterTable(eps, records),
      {
        caption: 'p50 latency (ms) by stored jobs',
        columns: ['jobs', ...lines.map((l) => l.label)],
        rows: lines[0]!.points.map(([x], i) => [x, ...lines.map((l) => round1(l.points[i]![1]))]),
      },
      {
        caption: `FerretDB, one query at a time at ${plan.jobs} jobs (median of ${PROBE_QUERIES} random jobs)`,
        columns: ['query', 'ms'],
        rows: probe.map((p) => [p.query, round1(p.ms)]),
      },
    ],
    plots: [
      {
        file: 'api-growth',
        title: 'API p50 latency by stored jobs',
        xLabel: 'stored jobs',
        yLabel: 'p50 latency (ms)',
        xLog: true,
        yLog: true,
        lines,
      },
    ],
    findings: findings(plan, eps, records, rss, probe, lines),
  };
}

function findings(
  plan: Plan,
  eps: Endpoint[],
  records: RunRecord[],
  rss: { ours: number; baseline: number },
  probe: ProbeRow[],
  lines: Plot['lines'],
): string[] {
  const [get, list, create] = eps as [Endpoint, Endpoint, Endpoint];
  const main = (target: string, e: Endpoint) => runsOf(records, target, e.key, (r) => r.phase === 'main');
  const med = (target: string, e: Endpoint, value: (f: RunFigures) => number) =>
    figure(main(target, e).map(value)).median;
  const ratio = (e: Endpoint) => med(OURS, e, (f) => f.rps) / med(BASELINE, e, (f) => f.rps);
  const on = (e: Endpoint) => lastOf(main(OURS, e));
  const off = (e: Endpoint) => lastOf(main(UNLIMITED, e));
  const growth = (target: string, e: Endpoint) => {
    const line = lines.find((l) => l.label === `${target} ${e.label}`)!;
    const k = line.points.length > 1 ? growthExponent(line.points) : Number.NaN;
    return `jobs^${k.toFixed(2)} (${shapeOf(k)})`;
  };
  const [withOwner, idOnly, count] = probe.map((p) => p.ms) as [number, number, number];
  const small = plan.growth[0];
  const smallText = () => {
    if (small === undefined) return '';
    const rps = (target: string, e: Endpoint) =>
      figure(runsOf(records, target, e.key, (r) => r.stored === small).map((f) => f.rps)).median;
    return (
      ` At ${small} jobs, where the database is cheap, the service's own cost shows: ${times(rps(OURS, get) / rps(BASELINE, get))} and ${times(rps(OURS, list) / rps(BASELINE, list))}, ` +
      `and ${times(rps(UNLIMITED, get) / rps(BASELINE, get))} and ${times(rps(UNLIMITED, list) / rps(BASELINE, list))} with rate limits off (one short run each): the rest is Hono, auth, validation and mapping (bench/validation.ts measures the validation).`
    );
  };
  return [
    `Reads at ${plan.jobs} jobs: GET /jobs/{id} at ${times(ratio(get))} the baseline's throughput, the list at ${times(ratio(list))} (goals >= ${GOALS.get} x and >= ${GOALS.list} x). ` +
      `At this count both servers wait on FerretDB (p50 ${med(BASELINE, get, (f) => f.p50).toFixed(0)} ms and ${med(BASELINE, list, (f) => f.p50).toFixed(0)} ms for the bare queries at ${CONNECTIONS} connections), so the service's own cost hides in the database's.` +
      smallText(),
    `The rate limiter adds ${(sum(on(get).commands) - sum(off(get).commands)).toFixed(1)} database commands to every request (GET /jobs/{id} at ${plan.jobs} jobs: ${describeCommands(on(get).commands)} with it, ${describeCommands(off(get).commands)} without): ` +
      "the limiter counts in memory and publishes each instance's counts at most once per RATE_LIMIT_SYNC_MS (one write and one read of rate_limit_counts per interval, not per request), so with limits that never refuse a request costs it no database command." +
      `GET /jobs/{id} p50 grows as ${growth(OURS, get)} for ours, ${growth(BASELINE, get)} for the baseline. Its lookup {_id, ownerId} goes through the _id index (the local FerretDB is built with that fix, scripts/ferretdb/overlay): ` +
      `one query at a time at ${plan.jobs} jobs it took ${withOwner.toFixed(1)} ms, against ${idOnly.toFixed(1)} ms for {_id} alone; on MongoDB both use the _id index.`,
    `The list p50 grows as ${growth(OURS, list)} for ours, ${growth(BASELINE, list)} for the baseline: FerretDB evaluates {ownerId} in Go on every stored job, although every owner has ${JOBS_PER_OWNER} jobs at every count; on MongoDB the {ownerId: 1, _id: 1} index serves it in about constant time.`,
    `POST /jobs: ours ${med(OURS, create, (f) => f.rps).toFixed(2)} req/s against ${med(BASELINE, create, (f) => f.rps).toFixed(0)} for the baseline's same count and two inserts (${times(ratio(create))}), with ${sum(on(create).commands).toFixed(1)} database commands per request against ${sum(lastOf(main(BASELINE, create)).commands).toFixed(1)} (${describeCommands(on(create).commands)}). ` +
      "By the code: the 50-job cap counts the owner's jobs (the aggregate), then the job and the audit record are inserted; the baseline does the same three commands. " +
      `One at a time at ${plan.jobs} jobs, FerretDB took ${count.toFixed(0)} ms for the count, a scan of every stored job in Go, against our p50 of ${med(OURS, create, (f) => f.p50).toFixed(0)} ms at ${CONNECTIONS} connections.`,
    `API resident memory after the load at ${plan.jobs} jobs: ${(rss.ours / MB).toFixed(0)} MB, against ${(rss.baseline / MB).toFixed(0)} MB for the bare baseline; both run under tsx, whose loader thread counts in both.`,
    `The load generator, the servers and FerretDB share this machine's cores, so the ratios are of the whole stack on it. At ${plan.jobs} jobs the slow endpoints give a handful of requests per run (see the notes), so their p99 is about their maximum.`,
  ];
}

if (isMain(import.meta.url)) await suiteMain(run);
