import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Machine } from '../bench/lib/machine.js';
import { type BenchResults, renderResults } from '../bench/lib/markdown.js';
import { writePlot } from '../bench/lib/plot.js';
import type { Plot, SuiteResult } from '../bench/lib/report.js';
import { compare } from '../bench/lib/stats.js';

// The benchmark report: RESULTS.md from a made-up run (pure), and one plot rendered to a PNG offline.

const machine: Machine = {
  cpu: 'Test CPU',
  cpus: 2,
  memoryGb: 8,
  os: 'Linux test',
  node: 'v20.0.0',
  versions: { agenda: '6.2.6', hono: '4.0.0' },
  ferretdb: '1.24.2',
  commit: 'abc1234',
  dirty: true,
  date: '2026-01-02T03:04:05.000Z',
};

const growth = (file: string, cost: (n: number) => number): Plot => ({
  file,
  title: `Growth ${file}`,
  xLabel: 'stored jobs',
  yLabel: 'ms',
  xLog: true,
  yLog: true,
  lines: [{ label: 'ours', points: [100, 1000, 10_000].map((n) => [n, cost(n)] as [number, number]) }],
});

function api(scale = 1): SuiteResult {
  return {
    id: 'api',
    title: 'API throughput',
    method: 'autocannon, interleaved rounds.',
    comparisons: [
      compare(
        {
          metric: 'GET /jobs/{id} requests/s',
          unit: 'req/s',
          better: 'higher',
          goal: { text: '>= 0.8 x baseline', met: false },
        },
        [1520, 1610, 1490].map((v) => v * scale),
        [2450, 2600, 2380],
      ),
      compare(
        { metric: 'reconcile 10 000 jobs', unit: 'ms', better: 'lower', goal: { text: '<= 10 s', met: true } },
        [4200, 4500, 4350],
      ),
      compare({ metric: 'p99 latency', unit: 'ms', better: 'lower', note: 'with | a pipe' }, [0.2, 0.25, 0.21]),
    ],
    tables: [{ caption: 'Capacity', columns: ['fires/min', 'p99 lag (ms)'], rows: [[1200, 980.123]] }],
    plots: [growth('reconcile-growth', (n) => 0.04 * n)],
    findings: ['The lock query scans every fire job.'],
  };
}

const results = (suites: SuiteResult[], quick = false): BenchResults => ({
  quick,
  machine,
  totalMs: 125_000,
  budgetMs: 900_000,
  runs: [
    { id: 'api', status: 'ok', ms: 60_000 },
    { id: 'scheduling', status: 'missing', ms: 0, detail: 'bench/scheduling.ts does not exist' },
  ],
  suites,
});

describe('RESULTS.md', () => {
  const text = renderResults(results([api()]));

  it('gives each figure with its spread, unit, baseline and ratio', () => {
    expect(text).toContain(
      '| api | GET /jobs/{id} requests/s | 1,520 req/s [1,490–1,610] | 2,450 req/s [2,380–2,600] | 0.62× | higher |',
    );
    // Rescaled to a readable unit, the spread in the same unit; no baseline, no ratio.
    expect(text).toContain('| reconcile 10 000 jobs | 4.35 s [4.2–4.5] | – | – | lower | 3 | met: <= 10 s |');
    expect(text).toContain('| p99 latency | 210 µs [200–250] |');
    expect(text).toContain('with \\| a pipe');
    expect(text).toContain('| 1,200 | 980 |');
  });

  it('says where and with what it ran', () => {
    expect(text).toContain('# Benchmark results\n');
    expect(text).toContain('at commit `abc1234` with uncommitted changes; total wall time 2.08 min (budget 15 min)');
    expect(text).toContain('| CPU | Test CPU × 2 |');
    expect(text).toContain('| agenda | 6.2.6 |');
    expect(text).toContain('FerretDB 1.24.2');
    expect(text).toContain('| scheduling | skipped | – | bench/scheduling.ts does not exist |');
  });

  it('lists each goal of the issue, met, not met or not measured, with its figure', () => {
    expect(text).toContain(
      "- **API reads >= 0.8 x the bare baseline's throughput**: **not met**\n  - **not met** (>= 0.8 x baseline): GET /jobs/{id} requests/s = 1,520 req/s [1,490–1,610], 0.62× the baseline [api]",
    );
    expect(text).toContain(
      '- **Reconcile 10 000 jobs in <= 10 s**: met\n  - met (<= 10 s): reconcile 10 000 jobs = 4.35 s [4.2–4.5] [api]',
    );
    expect(text).toContain('- **Worker memory at 10 000 jobs <= 200 MB**: not measured in this run.');
    expect(text).toContain(
      '- **No cost that grows faster than linearly in the number of stored jobs**: met, from the growth plots',
    );
  });

  it('embeds each plot with its growth exponent, and judges growth faster than linear', () => {
    expect(text).toContain('![Growth reconcile-growth](reconcile-growth.png)');
    expect(text).toContain('| ours | 1 | 1 | linear |');
    const quadratic = renderResults(results([{ ...api(), plots: [growth('lock', (n) => n * n)] }], true));
    expect(quadratic).toContain('![Growth lock](lock-quick.png)');
    expect(quadratic).toContain('| ours | 2 | 2 | faster than linear |');
    expect(quadratic).toContain(
      '- **No cost that grows faster than linearly in the number of stored jobs**: **not met**',
    );
  });

  it('includes the hand-written analysis verbatim, or says where to write it', () => {
    expect(text).toContain('Not written yet. Write it in `bench/NOTES.md`');
    const notes = '### Biggest costs left\n\n1. FerretDB | full scans\n';
    expect(renderResults(results([api()]), { notes })).toContain(
      `Edit that file, not this section. -->\n\n${notes.trim()}\n`,
    );
  });

  it('compares with an earlier run: our figure before and after, the change, the ratios', () => {
    const before = results([api(0.5)]);
    const after = renderResults(results([api()]), { before: { label: 'old.json', results: before } });
    expect(after).toContain('## Before and after');
    expect(after).toContain(
      '| api | GET /jobs/{id} requests/s | 760 req/s [745–805] | 1,520 req/s [1,490–1,610] | +100% | better | 0.31× → 0.62× |',
    );
    expect(after).toContain(
      '| api | reconcile 10 000 jobs | 4.35 s [4.2–4.5] | 4.35 s [4.2–4.5] | +0% | within spread | – |',
    );
    expect(text).not.toContain('## Before and after');
  });
});

describe('plots', () => {
  it('writes a PNG, offline', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bench-plot-'));
    try {
      // A zero on a log axis cannot be placed: it is left out, not an error.
      const plot = growth('p', (n) => n / 10);
      plot.lines.push({
        label: 'baseline',
        points: [
          [100, 0],
          [1000, 50],
          [10_000, 400],
        ],
      });
      await writePlot(plot, join(dir, 'p.png'));
      const png = await readFile(join(dir, 'p.png'));
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
      expect(png.readUInt32BE(16)).toBeGreaterThan(1000); // width: 640 px of plot, drawn at twice the size
      expect(png.length).toBeGreaterThan(20_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
