// npm run bench [-- --quick] [--only api,scheduling] [--local-db postgresql,sqlite] [--compare old.json]
//   [--out-dir dir] [--render-only]
// Runs the benchmark suites one after another, each alone in its own process, then writes
// results.json, RESULTS.md and the plots (a quick run writes results-quick.json, RESULTS-quick.md
// and <plot>-quick.png instead, so it never overwrites the full results).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type LocalBackend, localBackendOf } from '../src/db/quirks.js';
import { describeMachine } from './lib/machine.js';
import { type BenchResults, duration, outputNames, renderResults, type SuiteRun } from './lib/markdown.js';
import { writePlot } from './lib/plot.js';
import type { SuiteResult } from './lib/report.js';

/** The suites, in the order they run: bench/<id>.ts, each a `suiteMain` script. */
const SUITES = ['api', 'validation', 'scheduling', 'databases'];
/** Suites that compare the local databases themselves, so `--local-db` does not repeat them. */
const BOTH_DATABASES = new Set(['databases']);

/** The wall-time budgets for the whole run, on the 2-core benchmark machine. */
const BUDGET_MS = { full: 15 * 60_000, quick: 2 * 60_000 };
/**
 * How long one suite may run before it is stopped: above the budget, since the scheduling suite
 * alone (with issue 13's failover and history cases) takes about 20 min of a full run on main.
 */
const SUITE_TIMEOUT_MS = { full: 25 * 60_000, quick: 8 * 60_000 };

/** How long a suite's processes get to stop after SIGTERM before they are killed. */
const KILL_GRACE_MS = 5_000;

const root = fileURLToPath(new URL('..', import.meta.url));
const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

/** Ctrl-C or SIGTERM: stop the running suite and write nothing (the last complete results stay). */
const interrupt = new AbortController();

async function main(): Promise<number> {
  const options = parseOptions();
  const names = outputNames(options.quick);
  const outDir = resolve(options.outDir);
  const before = options.compare ? { label: options.compare, results: await readResults(options.compare) } : undefined;
  const results = options.renderOnly
    ? await readResults(join(outDir, names.json))
    : await runSuites(options.ids, options.quick, options.backends);
  await mkdir(outDir, { recursive: true });
  if (!options.renderOnly) await writeFile(join(outDir, names.json), `${JSON.stringify(results, null, 2)}\n`);
  for (const plot of results.suites.flatMap((s) => s.plots ?? [])) await writePlot(plot, join(outDir, names.png(plot)));
  const notes = await readFile(join(outDir, 'NOTES.md'), 'utf8').catch(() => undefined);
  await writeFile(join(outDir, names.markdown), renderResults(results, { notes, before }));
  const written = [
    names.markdown,
    ...(options.renderOnly ? [] : [names.json]),
    `${results.suites.flatMap((s) => s.plots ?? []).length} plot(s)`,
  ];
  log(`wrote ${written.join(', ')} in ${options.outDir}`);
  if (options.renderOnly) return 0;

  process.stdout.write(`Total wall time ${duration(results.totalMs)} (budget ${duration(results.budgetMs)}).\n`);
  if (results.totalMs > results.budgetMs)
    log(`WARNING: over the ${duration(results.budgetMs)} budget of ${options.quick ? 'a quick' : 'a full'} run`);
  const broken = results.runs.filter((r) => r.status === 'failed' || r.status === 'timeout');
  for (const r of broken) log(`WARNING: ${r.id} ${r.status === 'timeout' ? 'timed out' : 'failed'}: ${r.detail}`);
  return broken.length ? 1 : 0;
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      compare: { type: 'string' },
      'out-dir': { type: 'string', default: 'bench' },
      'render-only': { type: 'boolean', default: false },
      'local-db': { type: 'string' },
    },
  });
  const backends = values['local-db']?.split(',').map((name) => localBackendOf({ LOCAL_DB: name.trim() }));
  const ids = values.only
    ? values.only
        .split(',')
        .map((id) => id.trim())
        .filter(Boolean)
    : SUITES;
  const unknown = ids.filter((id) => !SUITES.includes(id));
  if (unknown.length) throw new Error(`unknown suite(s) ${unknown.join(', ')}; the suites are ${SUITES.join(', ')}`);
  return {
    quick: values.quick,
    ids,
    compare: values.compare,
    outDir: values['out-dir'],
    renderOnly: values['render-only'],
    backends,
  };
}

async function readResults(path: string): Promise<BenchResults> {
  return JSON.parse(await readFile(path, 'utf8')) as BenchResults;
}

/**
 * Runs each suite once, or once per local database in `backends` (LOCAL_DB set for the suite's
 * process; its results are named `<id>@<backend>`), so one run shows them side by side.
 */
async function runSuites(ids: string[], quick: boolean, backends?: LocalBackend[]): Promise<BenchResults> {
  const started = performance.now();
  // Before any file is written, so `dirty` describes the code that ran, not this run's output.
  const machine = describeMachine(root);
  const budgetMs = quick ? BUDGET_MS.quick : BUDGET_MS.full;
  const runs: SuiteRun[] = [];
  const suites: SuiteResult[] = [];
  for (const id of ids) {
    for (const backend of backends && !BOTH_DATABASES.has(id) ? backends : [undefined]) {
      interrupt.signal.throwIfAborted();
      const { run, result } = await runSuite(
        id,
        quick,
        quick ? SUITE_TIMEOUT_MS.quick : SUITE_TIMEOUT_MS.full,
        backend,
      );
      runs.push(run);
      if (result) suites.push(result);
    }
  }
  interrupt.signal.throwIfAborted();
  return { quick, machine, totalMs: Math.round(performance.now() - started), budgetMs, runs, suites };
}

/**
 * One suite in its own node process (its own database and service processes, nothing shared with
 * the suite before), stopped with everything it started if it runs past `timeoutMs`. A suite alone
 * over the whole run's budget has failed it already; the timeout keeps `npm run bench` bounded.
 */
async function runSuite(
  id: string,
  quick: boolean,
  timeoutMs: number,
  backend?: LocalBackend,
): Promise<{ run: SuiteRun; result?: SuiteResult }> {
  const named = await runSuiteOn(id, quick, timeoutMs, backend);
  if (!backend) return named;
  const tag = `@${backend}`;
  const result = named.result && {
    ...named.result,
    id: named.result.id + tag,
    title: `${named.result.title} — local database on ${backend}`,
  };
  return { run: { ...named.run, id: named.run.id + tag }, result };
}

async function runSuiteOn(
  id: string,
  quick: boolean,
  timeoutMs: number,
  backend?: LocalBackend,
): Promise<{ run: SuiteRun; result?: SuiteResult }> {
  const file = join(root, 'bench', `${id}.ts`);
  const label = backend ? `${id}@${backend}` : id;
  if (!existsSync(file)) {
    log(`skipping ${id}: bench/${id}.ts does not exist (yet)`);
    return { run: { id, status: 'missing', ms: 0, detail: `bench/${id}.ts does not exist` } };
  }
  const dir = await mkdtemp(join(tmpdir(), `bench-${id}-`));
  const out = join(dir, 'result.json');
  const started = performance.now();
  log(`${label}: starting${quick ? ' (quick)' : ''}, timeout ${duration(timeoutMs)}`);
  try {
    const args = ['--import', 'tsx', file, ...(quick ? ['--quick'] : []), '--out', out];
    const end = await runChild(id, args, timeoutMs, backend ? { LOCAL_DB: backend } : {});
    const ms = Math.round(performance.now() - started);
    log(`${label}: ${end.timedOut ? 'timed out' : end.code === 0 ? 'done' : 'failed'} after ${duration(ms)}`);
    // A suite stopped early could not remove its database; the next run must not start on its data.
    if (end.timedOut || end.code !== 0) await rm(join(root, `.local/bench-${id}-db`), { recursive: true, force: true });
    if (end.timedOut) return { run: { id, status: 'timeout', ms, detail: `stopped after ${duration(timeoutMs)}` } };
    if (end.code !== 0)
      return {
        run: { id, status: 'failed', ms, detail: end.signal ? `killed by ${end.signal}` : `exit code ${end.code}` },
      };
    try {
      return { run: { id, status: 'ok', ms }, result: parseSuiteResult(await readFile(out, 'utf8')) };
    } catch (error) {
      return { run: { id, status: 'failed', ms, detail: `unreadable result: ${(error as Error).message}` } };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function parseSuiteResult(json: string): SuiteResult {
  const result = JSON.parse(json) as SuiteResult;
  if (typeof result.id !== 'string' || !Array.isArray(result.comparisons))
    throw new Error('not a SuiteResult (needs id and comparisons)');
  return result;
}

interface ChildEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

/**
 * Runs `node <args>` from the repository root as the leader of a new process group, so that the
 * group signal reaches what the suite spawned (FerretDB, service processes) too. Its output is
 * streamed to our stderr, each line prefixed with the suite id.
 */
async function runChild(id: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv): Promise<ChildEnd> {
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const onInterrupt = () => void stopGroup(child.pid!);
  interrupt.signal.addEventListener('abort', onInterrupt);
  for (const stream of [child.stdout, child.stderr])
    createInterface({ input: stream }).on('line', (line) => process.stderr.write(`  [${id}] ${line}\n`));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    log(`${id}: over ${duration(timeoutMs)}, stopping it and everything it started`);
    void stopGroup(child.pid!);
  }, timeoutMs);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((ok, fail) => {
      child.once('error', fail);
      child.once('exit', (c, s) => ok([c, s]));
    });
    // Whatever the suite left running would share the machine with the next suite. A moment's grace
    // first: tsx's esbuild service and FerretDB notice their parent is gone and exit by themselves.
    if (!(await groupGone(child.pid!, 2_000))) {
      log(`${id}: processes it started were still running after it ended; stopping them`);
      await stopGroup(child.pid!);
    }
    return { code, signal, timedOut };
  } finally {
    clearTimeout(timer);
    interrupt.signal.removeEventListener('abort', onInterrupt);
  }
}

/** SIGTERM to the group, then SIGKILL to whatever is left after the grace period. */
async function stopGroup(pgid: number): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  if (!(await groupGone(pgid, KILL_GRACE_MS))) signalGroup(pgid, 'SIGKILL');
}

/** Whether the group is empty within `ms`. */
async function groupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (signalGroup(pgid, 0)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/** Sends `signal` to every process of the group; false when none is left (ESRCH). */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

// The suite runs in its own process group, which a Ctrl-C in the terminal does not reach: stop it here.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping the running suite; nothing will be written`);
    interrupt.abort(signal);
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (interrupt.signal.aborted) process.exit(interrupt.signal.reason === 'SIGINT' ? 130 : 143);
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(2);
  },
);
