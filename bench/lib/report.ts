/**
 * What every benchmark suite returns, for bench/run.ts to print, plot and write into
 * bench/RESULTS.md. Figures stay numbers here; formatting is the report's business.
 */

/** One measured figure: the median over rounds, with its spread. */
export interface Figure {
  median: number;
  /** Smallest and largest value over the rounds. */
  min: number;
  max: number;
  rounds: number;
}

/** One row of a comparison: ours against the baseline measured in the same run. */
export interface Comparison {
  /** What was measured, e.g. "GET /jobs/{id} requests/s". */
  metric: string;
  unit: string;
  ours: Figure;
  /** Absent where no baseline applies (e.g. reconcile time). */
  baseline?: Figure;
  /** ours.median / baseline.median, when there is a baseline. */
  ratio?: number;
  /** Which way is better, so the report can say whether the ratio is good. */
  better: 'higher' | 'lower';
  /** A goal from the issue, e.g. { text: 'p99 <= 1 s', met: false }. */
  goal?: { text: string; met: boolean };
  note?: string;
}

/** A line chart for the growth plots: x is usually the number of stored jobs. */
export interface Plot {
  /** File name without extension, e.g. "fire-lag-growth" (written as bench/<file>.png). */
  file: string;
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  lines: { label: string; points: [number, number][] }[];
}

export interface SuiteResult {
  /** Short id, e.g. "api", "fire-lag". */
  id: string;
  title: string;
  /** How it was measured, in a few sentences of markdown. */
  method: string;
  comparisons: Comparison[];
  /** Extra tables where a comparison does not fit (e.g. capacity steps). */
  tables?: { caption: string; columns: string[]; rows: (string | number)[][] }[];
  plots?: Plot[];
  /** Findings in plain words: causes, limits, what would change them. */
  findings?: string[];
  /** Wall time of the suite. */
  ms?: number;
}

export interface SuiteOptions {
  /** The small variant (`npm run bench -- --quick`), the whole suite under 2 minutes. */
  quick: boolean;
  /** Progress lines go here (stderr), never into the result. */
  log: (message: string) => void;
}

export type Suite = (options: SuiteOptions) => Promise<SuiteResult>;
