import type { Comparison, Figure } from './report.js';

/** The q-quantile (0..1) of the values, nearest rank; NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** Median and spread of one figure measured once per round. */
export function figure(perRound: readonly number[]): Figure {
  return {
    median: quantile(perRound, 0.5),
    min: Math.min(...perRound),
    max: Math.max(...perRound),
    rounds: perRound.length,
  };
}

/** A comparison row from per-round values of ours and of the baseline. */
export function compare(
  row: Omit<Comparison, 'ours' | 'baseline' | 'ratio'>,
  ours: readonly number[],
  baseline?: readonly number[],
): Comparison {
  const o = figure(ours);
  const b = baseline?.length ? figure(baseline) : undefined;
  return { ...row, ours: o, ...(b ? { baseline: b, ratio: b.median === 0 ? Number.NaN : o.median / b.median } : {}) };
}

/** p50, p99 and max of a sample (e.g. fire lags of one round). */
export function summary(values: readonly number[]): { n: number; p50: number; p99: number; max: number } {
  return {
    n: values.length,
    p50: quantile(values, 0.5),
    p99: quantile(values, 0.99),
    max: values.length ? Math.max(...values) : Number.NaN,
  };
}
