// npx tsx bench/scheduling.ts [--quick] [--out file.json]: fire lag against plain Agenda,
// capacity of one and two workers, start-up, memory and their growth with the number of jobs
// (issue 5, points 3 to 7). Starts its own FerretDB in .local/bench-scheduling-db and removes it.

import { isMain, suiteMain } from './lib/main.js';
import type { Suite, SuiteOptions } from './lib/report.js';
import { openSchedBench, type SchedBench } from './lib/sched-bench.js';
import { type CapacityStep, capacityRamp } from './lib/sched-capacity.js';
import { schedFindings } from './lib/sched-findings.js';
import { type LagRound, lagRound, type Side } from './lib/sched-lag.js';
import { type SchedResults, schedulingResult } from './lib/sched-report.js';
import { type ReconcileTiming, reconcileCase } from './lib/sched-startup.js';
import { quantile } from './lib/stats.js';

/** What a run measures; the full plan fits 9 minutes, the quick one 70 s, on the 2-core machine. */
interface Plan {
  sizes: number[];
  /** Rounds per side at each size (ours and the baseline alternate). */
  rounds: (n: number) => number;
  sameSecondDeadlineMs: number;
  /** The spread case (1 000 jobs over a minute), with the time allowed after the minute. */
  spread?: { n: number; tailMs: number };
  /** Our worker's memory is sampled after at least this long at the largest size ("after a minute of firing"). */
  largestMinRunMs: number;
  /**
   * Jobs at each capacity step. One worker climbs them all until one fails; two workers
   * (when asked) start at one worker's best, to see whether a second worker goes further.
   */
  capacity: { steps: number[]; windowMs: number; twoWorkers: boolean };
  /**
   * Sizes of the reconcile timings (restart and fresh import), the fresh import's deadline,
   * and whether an unfinished import's end (the last jobs, collections full) is timed too.
   */
  reconcile: { sizes: number[]; freshDeadlineMs: number; tail: boolean };
}

// One round per case: the same-second and spread cases wait for their deadlines, so two
// rounds of each would not fit the 9 minutes.
const FULL: Plan = {
  sizes: [100, 1000, 10_000],
  rounds: () => 1,
  sameSecondDeadlineMs: 40_000,
  spread: { n: 1000, tailMs: 3_000 },
  largestMinRunMs: 60_000,
  capacity: { steps: [20, 40, 80, 160, 320, 640], windowMs: 10_000, twoWorkers: true },
  reconcile: { sizes: [100, 1000, 10_000], freshDeadlineMs: 6_000, tail: true },
};

const QUICK: Plan = {
  sizes: [100, 1000],
  rounds: () => 1,
  sameSecondDeadlineMs: 4_000,
  largestMinRunMs: 0,
  capacity: { steps: [10, 40], windowMs: 4_000, twoWorkers: false },
  reconcile: { sizes: [1000], freshDeadlineMs: 4_000, tail: false },
};

/** Same-second rounds, ours and the baseline alternating. */
async function sameSecond(bench: SchedBench, plan: Plan, log: SuiteOptions['log']): Promise<LagRound[]> {
  const rounds: LagRound[] = [];
  const largest = Math.max(...plan.sizes);
  for (const n of plan.sizes) {
    for (let round = 1; round <= plan.rounds(n); round++) {
      for (const side of ['ours', 'baseline'] as Side[]) {
        const r = await lagRound(
          bench,
          side,
          {
            n,
            shape: 'same-second',
            deadlineMs: plan.sameSecondDeadlineMs,
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
  const { steps, windowMs } = plan.capacity;
  const one = await capacityRamp(bench, { workers: 1, steps, windowMs, tag: 'w1' }, log);
  if (!plan.capacity.twoWorkers) return [one];
  const best = one.filter((s) => s.pass).length - 1;
  const two = await capacityRamp(
    bench,
    { workers: 2, steps: steps.slice(Math.max(0, best)), windowMs, tag: 'w2' },
    log,
  );
  return [one, two];
}

export const run: Suite = async ({ quick, log }) => {
  const plan = quick ? QUICK : FULL;
  const bench = await openSchedBench();
  try {
    const rounds = await sameSecond(bench, plan, log);
    if (plan.spread) {
      for (const side of ['ours', 'baseline'] as Side[]) {
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
    const capacity = await capacityRamps(bench, plan, log);
    const reconciles: ReconcileTiming[] = [];
    for (const n of plan.reconcile.sizes) {
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
    const results: SchedResults = {
      rounds,
      capacity,
      reconciles,
      sameSecondDeadlineMs: plan.sameSecondDeadlineMs,
      spreadTailMs: plan.spread?.tailMs ?? 0,
    };
    return schedulingResult(results, schedFindings(results));
  } finally {
    await bench.close();
  }
};

if (isMain(import.meta.url)) await suiteMain(run);
