// npx tsx bench/scheduling.ts [--quick] [--out file.json] [--cases a,b] [--sizes 1000,10000] [--ours-only]:
// fire lag against plain Agenda, capacity of one, two and four workers, start-up, memory and
// their growth with the number of jobs (issue 5, points 3 to 7), failover after a SIGKILL and the
// hot paths with 200 000 historical runs (issue 13). Starts its own FerretDB in
// .local/bench-scheduling-db and removes it. --cases picks cases: same-second, spread, capacity,
// reconcile, failover, history; --sizes the same-second sizes; --ours-only leaves plain Agenda out.
// Without them everything runs. Through `npm run bench`: BENCH_SCHED_CASES, BENCH_SCHED_SIZES,
// BENCH_SCHED_OURS_ONLY=true (the suite's process inherits the environment).

import { parseArgs } from 'node:util';
import { isMain, suiteMain } from './lib/main.js';
import type { Suite, SuiteOptions } from './lib/report.js';
import { openSchedBench, type SchedBench } from './lib/sched-bench.js';
import { type CapacityStep, capacityRamp } from './lib/sched-capacity.js';
import { type FailoverOptions, type FailoverRound, failoverRound } from './lib/sched-failover.js';
import { schedFindings } from './lib/sched-findings.js';
import { type HistoryOptions, type HistoryResult, historyCase } from './lib/sched-history.js';
import { type LagRound, lagRound, type Side } from './lib/sched-lag.js';
import { type SchedResults, schedulingResult } from './lib/sched-report.js';
import { issue13Findings } from './lib/sched-report-13.js';
import { type ReconcileTiming, reconcileCase } from './lib/sched-startup.js';
import { quantile } from './lib/stats.js';

/** What a run measures; the full plan fits about 15 minutes, the quick one 3, on the 2-core machine. */
interface Plan {
  sizes: number[];
  /** Rounds per side at each size (ours and the baseline alternate). */
  rounds: (n: number) => number;
  /** How long after the slot a same-second round of N jobs waits for the last start (issue 13: 10 000 within 60 s). */
  sameSecondDeadlineMs: (n: number) => number;
  /** The spread case (1 000 jobs over a minute), with the time allowed after the minute. */
  spread?: { n: number; tailMs: number };
  /** Our worker's memory is sampled after at least this long at the largest size ("after a minute of firing"). */
  largestMinRunMs: number;
  /**
   * Jobs at each capacity step. One worker climbs them all until one fails; more workers (the
   * counts after the first) start at one worker's best, to see whether they go further.
   */
  capacity: { steps: number[]; windowMs: number; workers: number[] };
  /**
   * Sizes of the reconcile timings (restart and fresh import), the fresh import's deadline,
   * and whether an unfinished import's end (the last jobs, collections full) is timed too.
   */
  reconcile: { sizes: number[]; freshDeadlineMs: number; tail: boolean };
  failover: Omit<FailoverOptions, 'tag'>;
  history: HistoryOptions;
}

// One round per case: the same-second and spread cases wait for their deadlines, so two
// rounds of each would not fit the 9 minutes.
const FULL: Plan = {
  sizes: [100, 1000, 10_000],
  rounds: () => 1,
  sameSecondDeadlineMs: (n) => (n >= 10_000 ? 60_000 : 40_000),
  spread: { n: 1000, tailMs: 3_000 },
  largestMinRunMs: 60_000,
  capacity: { steps: [20, 40, 80, 160, 320, 640], windowMs: 10_000, workers: [1, 2, 4] },
  reconcile: { sizes: [100, 1000, 10_000], freshDeadlineMs: 6_000, tail: true },
  // The deadline covers main's takeover (the dispatcher's lock lifetime, 2 min by default, then a poll).
  failover: { workers: 3, jobs: 20, steadyMs: 5_000, deadlineMs: 150_000 },
  history: { runs: 200_000, apiJobs: 200, hotJobs: 50, requests: 20, windowMs: 10_000 },
};

const QUICK: Plan = {
  sizes: [100, 1000],
  rounds: () => 1,
  sameSecondDeadlineMs: () => 4_000,
  largestMinRunMs: 0,
  capacity: { steps: [10, 40], windowMs: 4_000, workers: [1] },
  reconcile: { sizes: [1000], freshDeadlineMs: 4_000, tail: false },
  failover: { workers: 2, jobs: 10, steadyMs: 3_000, deadlineMs: 30_000 },
  history: { runs: 20_000, apiJobs: 100, hotJobs: 20, requests: 10, windowMs: 4_000 },
};

const CASES = ['same-second', 'spread', 'capacity', 'reconcile', 'failover', 'history'] as const;
type Case = (typeof CASES)[number];

/** The cases, sizes and sides asked for on the command line (or BENCH_SCHED_CASES); everything by default. */
function selection() {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: process.env.BENCH_SCHED_CASES ?? '' },
      sizes: { type: 'string', default: process.env.BENCH_SCHED_SIZES ?? '' },
      'ours-only': { type: 'boolean', default: process.env.BENCH_SCHED_OURS_ONLY === 'true' },
    },
    strict: false,
  });
  const list = (v: unknown) =>
    String(v ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const cases = list(values.cases);
  const unknown = cases.filter((c) => !(CASES as readonly string[]).includes(c));
  if (unknown.length) throw new Error(`unknown case(s) ${unknown.join(', ')}; the cases are ${CASES.join(', ')}`);
  return {
    has: (c: Case) => cases.length === 0 || cases.includes(c),
    sizes: list(values.sizes).map(Number),
    sides: (values['ours-only'] ? ['ours'] : ['ours', 'baseline']) as Side[],
  };
}
type Selection = ReturnType<typeof selection>;

/** Same-second rounds, ours and the baseline alternating. */
async function sameSecond(bench: SchedBench, plan: Plan, pick: Selection, log: SuiteOptions['log']) {
  const rounds: LagRound[] = [];
  const sizes = pick.sizes.length ? pick.sizes : plan.sizes;
  const largest = Math.max(...sizes);
  for (const n of sizes) {
    for (let round = 1; round <= plan.rounds(n); round++) {
      for (const side of pick.sides) {
        const r = await lagRound(
          bench,
          side,
          {
            n,
            shape: 'same-second',
            deadlineMs: plan.sameSecondDeadlineMs(n),
            ...(side === 'ours' && n === largest ? { minRunMs: plan.largestMinRunMs } : {}),
            tag: `s${n}_${round}`,
          },
          log,
        );
        log(
          `  ${side} ${n} same second: ${r.n - r.notStarted}/${r.n} started, p99 ${Math.round(quantile(r.lagsMs, 0.99))} ms`,
        );
        rounds.push(r);
      }
    }
  }
  return rounds;
}

async function capacityRamps(bench: SchedBench, plan: Plan, log: SuiteOptions['log']): Promise<CapacityStep[][]> {
  const { steps, windowMs, workers } = plan.capacity;
  const one = await capacityRamp(bench, { workers: 1, steps, windowMs, tag: 'w1' }, log);
  const best = one.filter((s) => s.pass).length - 1;
  const ramps = [one];
  for (const w of workers.filter((w) => w > 1))
    ramps.push(
      await capacityRamp(bench, { workers: w, steps: steps.slice(Math.max(0, best)), windowMs, tag: `w${w}` }, log),
    );
  return ramps;
}

export const run: Suite = async ({ quick, log }) => {
  const plan = quick ? QUICK : FULL;
  const pick = selection();
  const bench = await openSchedBench();
  try {
    const rounds = pick.has('same-second') ? await sameSecond(bench, plan, pick, log) : [];
    if (plan.spread && pick.has('spread')) {
      for (const side of pick.sides) {
        rounds.push(
          await lagRound(
            bench,
            side,
            { n: plan.spread.n, shape: 'spread', deadlineMs: plan.spread.tailMs, tag: `spread${plan.spread.n}` },
            log,
          ),
        );
      }
    }
    const capacity = pick.has('capacity') ? await capacityRamps(bench, plan, log) : [];
    const reconciles: ReconcileTiming[] = [];
    for (const n of pick.has('reconcile') ? plan.reconcile.sizes : []) {
      for (const kind of ['restart', 'fresh', 'fresh-tail'] as const) {
        // The end of an import is only worth timing when the whole import did not finish.
        if (kind === 'fresh-tail' && (!plan.reconcile.tail || reconciles.at(-1)?.finished)) continue;
        const t = await reconcileCase(bench, n, kind, kind === 'restart' ? 120_000 : plan.reconcile.freshDeadlineMs);
        log(
          `${kind} reconcile ${n}: ${t.finished ? `${Math.round(t.ms)} ms` : `stopped, ${t.created} created, ${t.perSecond?.toFixed(1) ?? 0}/s`}`,
        );
        reconciles.push(t);
      }
    }
    const failovers: FailoverRound[] = [];
    if (pick.has('failover')) failovers.push(await failoverRound(bench, { ...plan.failover, tag: 'kill1' }, log));
    let history: HistoryResult | undefined;
    if (pick.has('history')) history = await historyCase(bench, plan.history, log);
    const results: SchedResults = {
      rounds,
      capacity,
      reconciles,
      failovers,
      ...(history ? { history } : {}),
      sameSecondDeadlineMs: plan.sameSecondDeadlineMs(1000),
      spreadTailMs: plan.spread?.tailMs ?? 0,
    };
    // The findings of issue 5 read the fire-lag rounds; a run of other cases only has issue 13's.
    const findings = [
      ...(rounds.length ? schedFindings(results) : []),
      ...issue13Findings(rounds, capacity, failovers, history),
    ];
    return schedulingResult(results, findings);
  } finally {
    await bench.close();
  }
};

if (isMain(import.meta.url)) await suiteMain(run);
