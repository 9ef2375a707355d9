import type { LagRound, Side } from './sched-lag.js';
import type { SchedResults } from './sched-report.js';
import { freshImportMs } from './sched-startup.js';
import { quantile } from './stats.js';

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').replace(/,/g, ' ');
const s1 = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const median = (values: number[]) => quantile(values, 0.5);

/** The exponent b of y ~ x^b between the two largest sizes, in words. */
function growth(points: [number, number][]): string {
  const [a, b] = points
    .filter(([x, y]) => x > 0 && y > 0)
    .sort((p, q) => p[0] - q[0])
    .slice(-2);
  if (!a || !b) return 'not measured at two sizes';
  const exp = Math.log(b[1] / a[1]) / Math.log(b[0] / a[0]);
  const word = Math.abs(exp) < 0.2 ? 'flat' : exp < 0.8 ? 'sublinear' : exp <= 1.2 ? 'linear' : 'faster than linear';
  return `${word} (exponent ${exp.toFixed(2)} from ${fmt(a[0])} to ${fmt(b[0])} jobs)`;
}

function rounds(results: SchedResults, side: Side, shape: LagRound['shape'], n?: number) {
  return results.rounds.filter((r) => r.side === side && r.shape === shape && (n === undefined || r.n === n));
}

const sizes = (results: SchedResults) => [...new Set(results.rounds.map((r) => r.n))].sort((a, b) => a - b);
const lockAt = (results: SchedResults, side: Side, n: number) =>
  median(rounds(results, side, 'same-second', n).map((r) => r.lockQueryMs));
const p99 = (r: LagRound) => quantile(r.lagsMs, 0.99);

function lockAllFinding(results: SchedResults): string {
  const parts = sizes(results).map(
    (n) =>
      `${fmt(n)} jobs: ${lockAt(results, 'baseline', n).toFixed(0)} ms per lock query, so about ${s1(n * lockAt(results, 'baseline', n))} to lock all`,
  );
  return (
    'Fire lag is bound by Agenda locking, on both sides: a poll locks every job due within processEvery one findOneAndUpdate at a time ' +
    '(JobProcessor.process awaits jobQueueFilling, which recurses until a lock query finds nothing, and only then calls jobProcessing), so it starts none of them ' +
    'before that chain ends; and on FerretDB each lock query reads every document of agendaJobs (its filter is not an equality on _id; the index Agenda relies on is not used). ' +
    `Measured on the seeded, idle collection: ${parts.join('; ')}. ` +
    'So the first start of a burst of N comes about N x (lock query time) after the poll that found it, and that time itself grows with N: a same-second burst costs N^2 on FerretDB. ' +
    'On a real MongoDB the lock query uses findAndLockNextJobIndex and costs about the same at any N.'
  );
}

/** The spread case: the lock chain never ends when jobs fall due faster than they are locked. */
function starvationFinding(results: SchedResults): string | undefined {
  const spread = results.rounds.filter((r) => r.shape === 'spread');
  if (!spread.length) return undefined;
  const n = spread[0]!.n;
  const started = (side: Side) =>
    spread
      .filter((r) => r.side === side)
      .map((r) => `${r.n - r.notStarted} of ${fmt(r.n)}`)
      .join(', ');
  const lock = median(spread.filter((r) => r.side === 'baseline').map((r) => r.lockQueryMs));
  const ours = spread.find((r) => r.side === 'ours');
  const oursLocks = ours?.commands?.['findAndModify agendaJobs'];
  return (
    `Spread over a minute, ${fmt(n)} jobs fall due at ${(n / 60).toFixed(1)} a second, while one lock query on that collection takes ${lock.toFixed(0)} ms idle ` +
    `(${(1000 / lock).toFixed(1)} a second at best, and several chains run at once, each slowing the others). Each lock chain moves its horizon on (now + processEvery) at every step, ` +
    'so while jobs fall due faster than it locks them it never finds nothing, never ends, and Agenda never calls jobProcessing: ' +
    `${started('ours')} slots started for ours, ${started('baseline')} for plain Agenda, within the minute and ${results.spreadTailMs / 1000} s after. ` +
    (oursLocks
      ? `Our worker sent ${oursLocks.count} lock queries in that round (mean ${(oursLocks.ms / oursLocks.count).toFixed(0)} ms), for run jobs only: `
      : '') +
    'our schedules have no Agenda job each; one dispatcher job reads the due cron jobs with one query a second, so no lock chain runs over every stored job. ' +
    'For plain Agenda on FerretDB this is starvation, not lag, until a lock query costs well under 1/16 s, i.e. uses an index (MongoDB).'
  );
}

/** Where a burst's lag comes from: the dispatcher's fires, then the runs' own Agenda jobs. */
function queueFinding(results: SchedResults): string | undefined {
  const r = results.rounds.find(
    (x) => x.side === 'ours' && x.shape === 'same-second' && x.firedLagsMs?.length && x.notStarted < x.n,
  );
  if (!r) return undefined;
  const fired = median(r.firedLagsMs!);
  // A slot not started by the deadline has exactly the deadline as its lag.
  const startedLags = r.lagsMs.filter((l) => l < results.sameSecondDeadlineMs);
  return (
    `At ${fmt(r.n)} jobs on one second the dispatcher accounted for each slot (run recorded and queued) at p50 ${s1(fired)}, and the runs started at p50 ${s1(median(startedLags))}. ` +
    'A fire is a few writes (read the job by id, insert the run, queue its Agenda job, move the job on), eight at a time; each run is then a one-off Agenda job that is locked by its own lock query, ' +
    'which on FerretDB reads every queued run, and that writes about ten documents as it goes (claim, state, heartbeat, outcome, the job). SQLite takes one write at a time.'
  );
}

function oursVsBaseline(results: SchedResults): string | undefined {
  const n = sizes(results).find((size) =>
    rounds(results, 'baseline', 'same-second', size).some((r) => r.notStarted < r.n),
  );
  if (n === undefined) return undefined;
  const ours = rounds(results, 'ours', 'same-second', n);
  const base = rounds(results, 'baseline', 'same-second', n);
  const profiled = ours.find((r) => r.commands && Object.keys(r.commands).length);
  const locks = profiled?.commands?.['findAndModify agendaJobs'];
  const total = Object.values(profiled?.commands ?? {}).reduce((s, t) => s + t.ms, 0);
  const top = Object.entries(profiled?.commands ?? {})
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, 4)
    .map(([k, t]) => `${k} ${t.count}x, ${((100 * t.ms) / total).toFixed(0)}%`);
  const started = profiled ? profiled.n - profiled.notStarted : 0;
  const fired = profiled?.firedLagsMs?.length ?? 0;
  const commands = Object.values(profiled?.commands ?? {}).reduce((s, t) => s + t.count, 0);
  return (
    `At ${fmt(n)} jobs due on one second our worker's p99 is ${s1(median(ours.map(p99)))} against ${s1(median(base.map(p99)))} for plain Agenda ` +
    `(${median(ours.map((r) => r.n - r.notStarted))} vs ${median(base.map((r) => r.n - r.notStarted))} of ${fmt(n)} slots started within the deadline). ` +
    (locks && profiled
      ? `In that round our worker sent ${locks.count} lock queries (findAndModify agendaJobs, mean ${(locks.ms / locks.count).toFixed(0)} ms) for ${fired} slots fired and ${started} runs started: ` +
        'the schedules cost one query a second (the dispatcher), and every slot fired queues a one-off run job that Agenda locks with a query over the queued runs (the in-memory notification starts that chain at once). ' +
        `In all it sent ${fired ? (commands / fired).toFixed(0) : '?'} database commands per slot fired, ${fired ? (locks.count / fired).toFixed(1) : '?'} of them lock queries; plain Agenda needs one lock query and two saves of the job's state per fire (Job.run), plus its own work. ` +
        `Our worker's database time by command: ${top.join('; ')}. `
      : '') +
    'FerretDB answers these concurrently but on the same two cores, so more queries in flight make each one slower (compare the mean lock time in the rounds to the idle lock query).'
  );
}

function saturation(results: SchedResults): string {
  const ours = results.rounds.filter((r) => r.side === 'ours');
  const cores = (r: LagRound) => ({ db: r.cpu.db / (r.windowMs / 1000), proc: r.cpu.process / (r.windowMs / 1000) });
  const db = ours.map((r) => cores(r).db);
  const proc = ours.map((r) => cores(r).proc);
  return (
    `The database, not the worker, is the bottleneck: during our rounds FerretDB used ${Math.min(...db).toFixed(2)}-${Math.max(...db).toFixed(2)} CPU cores ` +
    `(of 2, shared with the other benchmarks on this machine) while our worker used ${Math.min(...proc).toFixed(2)}-${Math.max(...proc).toFixed(2)}. ` +
    'The worker spends its time waiting for replies (see the command tables).'
  );
}

function capacityFinding(results: SchedResults): string | undefined {
  if (!results.capacity.length) return undefined;
  const lines = results.capacity.map((steps) => {
    const w = steps[0]?.workers ?? 0;
    const passed = steps.filter((s) => s.pass);
    const broke = steps.find((s) => !s.pass);
    const best = passed.length
      ? `${Math.max(...passed.map((s) => s.offeredPerMin))} fires/min`
      : `less than its first step (${steps[0]?.offeredPerMin} fires/min)`;
    const why = broke
      ? `it broke at ${broke.offeredPerMin}/min (${broke.jobs} jobs): p50 ${ms0(broke.p50Ms)} ms, p99 ${ms0(broke.p99Ms)} ms, ${broke.notStarted} slots not started, ` +
        `FerretDB at ${broke.dbCores.toFixed(2)} cores, ${broke.lockQueries} lock queries in the window at ${broke.lockQueryMeanMs.toFixed(0)} ms each`
      : 'no step failed';
    return `${w} worker${w > 1 ? 's' : ''}: ${best}; ${why}`;
  });
  const failed = results.capacity.flatMap((steps) => steps.filter((s) => !s.pass));
  const quiet = failed.filter((s) => s.dbCores < 0.5 && s.p50Ms < PASS_MS / 2);
  const busy = failed.filter((s) => !quiet.includes(s));
  const [one, two] = results.capacity;
  const shared = one && two ? two.find((s) => one.some((o) => o.jobs === s.jobs)) : undefined;
  const single = shared ? one!.find((o) => o.jobs === shared.jobs) : undefined;
  return (
    `Capacity (p99 < 1 s, every slot started): ${lines.join('. ')}. ` +
    (quiet.length
      ? 'A step that fails with FerretDB far from busy and p50 low fails on a few slow slots: with about ten slots per job and window, p99 is close to the maximum, and a one-second stall ' +
        '(a run job waiting for its lock chain, or this shared machine) decides it. '
      : '') +
    (busy.length
      ? 'Where it breaks, the lock queries slow down many times over (mean lock time in the table against a few ms at the steps that pass, on collections of under 200 documents): ' +
        'the chains of all five job names and of every queued run overlap on FerretDB, each lock waits for the others, and the lag grows past the window, the spread case on a small scale. '
      : '') +
    (shared && single
      ? `At ${shared.jobs} jobs two workers sent ${shared.lockQueries} lock queries against ${single.lockQueries} for one, at ${shared.lockQueryMeanMs.toFixed(0)} against ${single.lockQueryMeanMs.toFixed(0)} ms each: ` +
        'a second worker adds lock chains racing for the same jobs on the same FerretDB (whose findAndModify is a read then a write, so both can lock one; our runner drops the duplicate), not database capacity.'
      : '')
  );
}

const PASS_MS = 1000;

const ms0 = (v: number) => Math.round(v);

function reconcileFinding(results: SchedResults): string | undefined {
  const restart = results.reconciles
    .filter((t) => t.kind === 'restart' && t.finished)
    .map((t) => [t.n, t.ms] as [number, number]);
  const ns = [...new Set(results.reconciles.filter((t) => t.kind === 'fresh').map((t) => t.n))];
  if (!restart.length && !ns.length) return undefined;
  const freshText = ns
    .map((n) => {
      const start = results.reconciles.find((t) => t.n === n && t.kind === 'fresh')!;
      const end = results.reconciles.find((t) => t.n === n && t.kind === 'fresh-tail');
      const total = freshImportMs(results.reconciles, n)!;
      if (!total.estimated) return `${fmt(n)} jobs in ${s1(total.ms)}`;
      return (
        `${fmt(n)} jobs: ${start.perSecond?.toFixed(1) ?? 0} jobs/s at the start` +
        (end ? `, ${end.perSecond?.toFixed(2) ?? 0} jobs/s at the end` : '') +
        `, about ${s1(total.ms)} in all`
      );
    })
    .join('; ');
  const ends = ns
    .map((n) => results.reconciles.find((t) => t.n === n && t.kind === 'fresh-tail'))
    .filter((t) => t?.perSecond);
  const perJob = ends.map((t) => [t!.n, 1000 / t!.perSecond!] as [number, number]);
  return (
    `Reconcile at restart makes sure the dispatcher's Agenda job exists, removes per-job fire jobs of the old scheme, and reads the enabled jobs without a next fire and the paused ones with one (two scans of cron_jobs); it grows ${growth(restart)}. ` +
    `A fresh import (jobs stored without a next fire) gives each its next fire with one conditional update by id: ${freshText}. ` +
    (perJob.length > 1 ? `The cost of one update with the collections full grows ${growth(perJob)}. ` : '') +
    'Updates by id use the _id index (the local FerretDB is built with that fix, see scripts/ferretdb/overlay), so the import grows about linearly.'
  );
}

function memoryFinding(results: SchedResults): string | undefined {
  const n = Math.max(...sizes(results));
  const ours = rounds(results, 'ours', 'same-second', n);
  const base = rounds(results, 'baseline', 'same-second', n);
  if (!ours.length) return undefined;
  const rss = sizes(results).map(
    (size) => [size, median(rounds(results, 'ours', 'same-second', size).map((r) => r.rssReadyMb))] as [number, number],
  );
  const working = results.rounds.filter((r) => r.side === 'ours' && r.notStarted < r.n).sort((a, b) => b.n - a.n)[0];
  const idle = ours.every((r) => r.notStarted === r.n);
  return (
    `Memory at ${fmt(n)} jobs: our worker ${median(ours.map((r) => r.rssReadyMb)).toFixed(0)} MB after boot, ${median(ours.map((r) => r.rssEndMb)).toFixed(0)} MB after ${s1(median(ours.map((r) => r.windowMs)))} ` +
    `(goal 200 MB), plain Agenda ${median(base.map((r) => r.rssReadyMb)).toFixed(0)} and ${median(base.map((r) => r.rssEndMb)).toFixed(0)} MB. ` +
    (idle
      ? `At ${fmt(n)} jobs nothing fired in that time (only lock queries), so the end figure is not a worker under load; `
      : '') +
    (working
      ? `with runs going (${fmt(working.n)} jobs, ${working.n - working.notStarted} runs) it went from ${working.rssReadyMb.toFixed(0)} to ${working.rssEndMb.toFixed(0)} MB. `
      : '') +
    `RSS after boot against the number of jobs: ${growth(rss)}; most of it is the runtime (node, tsx compiling the sources, mongoose, Agenda), and reconcile reads the jobs' schedules once at boot.`
  );
}

function growthFinding(results: SchedResults): string {
  const lock = (side: Side) => sizes(results).map((n) => [n, lockAt(results, side, n)] as [number, number]);
  const lag = (side: Side) =>
    sizes(results).map((n) => [n, median(rounds(results, side, 'same-second', n).map(p99))] as [number, number]);
  return (
    `Growth: one lock query grows ${growth(lock('baseline'))} (baseline collection) and ${growth(lock('ours'))} (ours), the full scan FerretDB makes; ` +
    `same-second p99 grows ${growth(lag('ours'))} for ours and ${growth(lag('baseline'))} for plain Agenda, but those figures are capped by the deadline once slots stop starting within it, ` +
    'so they understate the real growth, which is N lock queries of N-proportional cost.'
  );
}

function duplicateLocks(results: SchedResults): string | undefined {
  const dup = results.rounds
    .filter((r) => r.side === 'ours')
    .reduce(
      (s, r) =>
        s +
        Object.entries(r.warnings)
          .filter(([m]) => m.includes('cannot be updated in the database'))
          .reduce((a, [, c]) => a + c, 0),
      0,
    );
  return dup
    ? `Our worker logged ${dup} "agenda error: job ... cannot be updated in the database" over the rounds: a run job locked by two concurrent lock chains (FerretDB's findAndModify is a read then a write), run once by our runner, then its second copy finds the job already removed.`
    : undefined;
}

/** Findings in plain words, from the figures of this run. */
export function schedFindings(results: SchedResults): string[] {
  return [
    lockAllFinding(results),
    starvationFinding(results),
    oursVsBaseline(results),
    queueFinding(results),
    saturation(results),
    capacityFinding(results),
    reconcileFinding(results),
    memoryFinding(results),
    growthFinding(results),
    duplicateLocks(results),
  ].filter((f): f is string => Boolean(f));
}
