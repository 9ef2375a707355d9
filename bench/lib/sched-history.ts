import { loadavg } from 'node:os';
import { SignJWT } from 'jose';
import { ObjectId } from 'mongodb';
import type { Connection } from 'mongoose';
import { connectDb, freePort } from '../../src/db/index.js';
import { parseEnv } from '../../src/env.js';
import { createLogger } from '../../src/lib/logger.js';
import { openScheduler } from '../../src/scheduler/index.js';
import { jobInput } from './api-fixtures.js';
import type { BenchDb, SchedBench } from './sched-bench.js';
import { startOurWorker } from './sched-bench.js';
import { type CapacityStep, type MeasuredJob, measureWindow, openWindowAfterPoll } from './sched-capacity.js';
import { seedJobs } from './seed.js';
import { startServiceProcess } from './service-process.js';
import { quantile } from './stats.js';

const SECRET = 'bench-history-secret-0123456789abcdef-x';
const CONFIG = parseEnv({ LOG_LEVEL: 'silent', CRON_ALLOW_SECONDS: 'true', MONGODB_SOCKET_TIMEOUT_MS: '300000' });

export interface HistoryOptions {
  /** Historical runs inserted into cron_job_runs between the two phases (the issue: 200 000). */
  runs: number;
  /** Jobs the API paths read (owners of 50, never due in the bench), and jobs firing every 10 s for the fire lag. */
  apiJobs: number;
  hotJobs: number;
  /** Sequential requests per endpoint and phase (after a short warm-up). */
  requests: number;
  windowMs: number;
}

export type HotPath = 'runs' | 'list' | 'create' | 'recovery' | 'boot' | 'fire-p50' | 'fire-p99';

/** One phase: the hot paths' figures with the run history empty, or full. */
export interface HistoryPhase {
  storedRuns: number;
  /** p50 ms of each path (fire lag: p50 and p99 of one window). */
  ms: Record<HotPath, number>;
  fire: CapacityStep;
  load: number;
}

export interface HistoryResult {
  /** Runs inserted (the plan's count: metric names use it, so they match from run to run). */
  inserted?: number;
  empty: HistoryPhase;
  full: HistoryPhase;
  /** Time to insert the history, ms. */
  insertMs: number;
}

const OWNER = (k: number) => `history-owner-${k}`;
const sign = (owner: string) =>
  new SignJWT({ sub: owner })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(SECRET));

/** p50 of `count` sequential calls of `request` (each must answer `status`), after two unmeasured ones. */
async function timed(count: number, status: number, request: (i: number) => Promise<Response>): Promise<number> {
  const times: number[] = [];
  for (let i = -2; i < count; i++) {
    const started = performance.now();
    const res = await request(i + 2);
    await res.arrayBuffer();
    if (res.status !== status) throw new Error(`expected ${status}, got ${res.status} from ${res.url}`);
    if (i >= 0) times.push(performance.now() - started);
  }
  return quantile(times, 0.5);
}

/**
 * History growth (issue 13): the hot paths with an empty run history, then again after
 * `runs` finished runs are inserted straight into cron_job_runs, spread over every job (newest
 * last, one an hour back in time). Paths: a job's runs (GET /jobs/{id}/runs), the owner's job
 * list (GET /jobs), create (POST /jobs), one recovery pass (the scheduler's recover(), in this
 * process), a worker's boot (which repairs and recovers before it reports started), and the
 * fire lag of the hot jobs over one window.
 */
export async function historyCase(
  bench: SchedBench,
  o: HistoryOptions,
  log: (m: string) => void,
): Promise<HistoryResult> {
  await bench.settle();
  const db = await bench.database('history');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/api/cron`;
  const api = await startServiceProcess({
    name: 'history api',
    entry: 'src/server.ts',
    env: {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      HOST: '127.0.0.1',
      PORT: String(port),
      MONGODB_URI: db.uri,
      JWT_SECRET: SECRET,
      EMAIL_ALLOWED_DOMAINS: 'example.com',
      // Off: the limiter's own work would be measured beside the paths.
      RATE_LIMIT_PER_USER: '0',
      RATE_LIMIT_PER_IP: '0',
      RATE_LIMIT_RUN_NOW_PER_USER: '0',
    },
    ready: { url: `http://127.0.0.1:${port}/healthz` },
  });
  try {
    const owners = Math.ceil(o.apiJobs / 50);
    const apiIds = await seedJobs(db.conn, o.apiJobs, {
      cron: () => '0 0 1 1 *',
      owners,
      ownerPrefix: 'history-owner-',
    });
    const hotCron = (i: number) => `${i % 10}/10 * * * * *`;
    const hotIds = await seedJobs(db.conn, o.hotJobs, { cron: hotCron, owners: 1, ownerPrefix: 'history-hot-' });
    const hot: MeasuredJob[] = hotIds.map((id, i) => ({ id, cron: hotCron(i) }));
    const tokens = new Map(
      await Promise.all([...Array(owners).keys()].map(async (k) => [k, await sign(OWNER(k))] as const)),
    );
    const phase = async (storedRuns: number, tag: string): Promise<HistoryPhase> => {
      const phaseStart = performance.now();
      const auth = (k: number) => ({ authorization: `Bearer ${tokens.get(k % owners)}` });
      const runs = await timed(o.requests, 200, (i) =>
        fetch(`${url}/jobs/${apiIds[(i * 7) % apiIds.length]}/runs`, { headers: auth((i * 7) % apiIds.length) }),
      );
      const list = await timed(o.requests, 200, (i) => fetch(`${url}/jobs?limit=50`, { headers: auth(i) }));
      // A fresh owner per phase, so neither meets the per-owner cap or the other's jobs.
      const poster = await sign(`history-poster-${tag}`);
      const create = await timed(o.requests, 201, (i) =>
        fetch(`${url}/jobs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${poster}`, 'content-type': 'application/json' },
          body: JSON.stringify(jobInput(i)),
        }),
      );
      const apiDone = performance.now();
      const recovery = await timeRecovery(db);
      const load = loadavg()[0]!;
      const recoveryDone = performance.now();
      const { fire, bootMs } = await fireWindow(bench, db, hot, o.windowMs, tag);
      // Where a phase's wall time goes (with a full history the bench's own reads take seconds too).
      log(
        `history ${tag}: API paths ${s1(apiDone - phaseStart)}, recovery ${s1(recoveryDone - apiDone)}, ` +
          `worker and fire window ${s1(performance.now() - recoveryDone)}`,
      );
      const ms = { runs, list, create, recovery, boot: bootMs, 'fire-p50': fire.p50Ms, 'fire-p99': fire.p99Ms };
      log(
        `history ${tag} (${storedRuns} runs stored): ${JSON.stringify(ms, (_, v) => (typeof v === 'number' ? Math.round(v) : v))}`,
      );
      return { storedRuns, ms, fire, load };
    };
    const empty = await phase(await countRuns(db.conn), 'empty');
    const started = performance.now();
    await insertHistory(db.conn, [...apiIds, ...hotIds], o.runs);
    const insertMs = performance.now() - started;
    log(`history: ${o.runs} runs inserted in ${Math.round(insertMs)} ms`);
    log(`history: FerretDB settled after ${s1(await bench.settle())}`);
    const full = await phase(await countRuns(db.conn), 'full');
    return { inserted: o.runs, empty, full, insertMs };
  } finally {
    await api.stop();
    await db.drop();
  }
}

const s1 = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const countRuns = (conn: Connection) => conn.collection('cron_job_runs').countDocuments({});

/** One worker over the hot jobs: its boot (repair and recovery included), then one measured window. */
async function fireWindow(bench: SchedBench, db: BenchDb, hot: MeasuredJob[], windowMs: number, tag: string) {
  const worker = await startOurWorker(bench, db.uri, `history-${tag}`, 120_000);
  try {
    // One window's wait first: the hot jobs fell due while no worker ran, and the boot's burst of
    // missed slots and catch-up runs is the misfire path, not the steady firing measured here.
    const from = (await openWindowAfterPoll()) + windowMs;
    return { fire: await measureWindow(bench, db, [worker], hot, from, windowMs), bootMs: worker.readyMs };
  } finally {
    // Stopped as in a deploy, not killed: a killed worker would leave the dispatcher locked for
    // its lock lifetime, and the next phase's worker would measure that wait, not the history.
    await worker.stop({ signal: 'SIGTERM', graceMs: 15_000 });
  }
}

/** The median of three recovery passes, in this process on a connection of its own, ms. */
async function timeRecovery(db: BenchDb): Promise<number> {
  const conn = await connectDb(db.uri, CONFIG);
  try {
    const scheduler = await openScheduler(conn, CONFIG, createLogger(CONFIG));
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await scheduler.recover();
      times.push(performance.now() - started);
    }
    return quantile(times, 0.5);
  } finally {
    await conn.close(true);
  }
}

const STATUSES = ['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded', 'failed', 'missed'];

/**
 * `total` finished runs of the jobs given, round robin, each job's an hour apart going back from
 * a day ago (so none is near a slot the bench fires), inserted in batches as a long-lived
 * service would have recorded them.
 */
async function insertHistory(conn: Connection, jobIds: string[], total: number): Promise<void> {
  const jobs = await conn
    .collection('cron_jobs')
    .find({}, { projection: { ownerId: 1 } })
    .toArray();
  const ownerOf = new Map(jobs.map((j) => [String(j._id), j.ownerId as string]));
  const dayAgo = Date.now() - 86_400_000;
  const batch = 5000;
  for (let start = 0; start < total; start += batch) {
    const docs = [];
    for (let i = start; i < Math.min(total, start + batch); i++) {
      const jobId = jobIds[i % jobIds.length]!;
      const slot = new Date(dayAgo - Math.floor(i / jobIds.length) * 3_600_000);
      const status = STATUSES[i % STATUSES.length]!;
      const ran = status !== 'missed';
      const at = new Date(slot.getTime() + 50);
      docs.push({
        // Its id's time is its creation's, as the driver would have made it (run pages sort by _id).
        _id: new ObjectId(ObjectId.generate(Math.floor(slot.getTime() / 1000))),
        jobId: new ObjectId(jobId),
        ownerId: ownerOf.get(jobId)!,
        type: 'sendEmail',
        scheduledFor: slot,
        trigger: 'schedule',
        status,
        startedAt: ran ? at : null,
        finishedAt: ran ? new Date(at.getTime() + 120) : null,
        durationMs: ran ? 120 : null,
        error: status === 'failed' ? 'SMTP 451: try again later' : null,
        result: status === 'succeeded' ? { messageId: `<${i}@bench>` } : null,
        worker: ran ? 'history-worker' : null,
        attempts: ran ? 1 : 0,
        heartbeatAt: ran ? at : null,
        createdAt: slot,
        updatedAt: at,
      });
    }
    await conn.collection('cron_job_runs').insertMany(docs, { ordered: false });
  }
}
