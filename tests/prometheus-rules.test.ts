import { readFileSync } from 'node:fs';
import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { pingDb } from '../src/db/index.js';
import { createWorkerProbe } from '../src/worker-probe.js';
import { type Harness, startHarness, waitFor } from './helpers/harness.js';

// docs/prometheus/: the scrape configuration and alert rules operators copy. Every rule must parse
// (Prometheus' own PromQL grammar) and read only series, and labels of them, that the service
// really serves: scraped here from the API's /metrics and a worker's listener after real runs.

const docs = new URL('../docs/prometheus/', import.meta.url);
const rules = parse(readFileSync(new URL('alerts.yml', docs), 'utf8')) as {
  groups: { name: string; rules: Record<string, unknown>[] }[];
};
const config = parse(readFileSync(new URL('prometheus.yml', docs), 'utf8')) as {
  rule_files: string[];
  scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[];
};

/** Series names with the label names seen on them, from a scrape; histograms' parts included. */
function seriesOf(text: string): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = line.match(/^# TYPE (\w+) (\w+)$/);
    if (type) {
      const parts = type[2] === 'histogram' ? ['_bucket', '_sum', '_count'] : [''];
      for (const part of parts) series.set(type[1] + part, series.get(type[1] + part) ?? new Set());
      continue;
    }
    const sample = line.match(/^(\w+)(?:\{(.*)\})? /);
    if (!sample) continue;
    const labels = series.get(sample[1]!) ?? new Set();
    for (const m of (sample[2] ?? '').matchAll(/(\w+)="/g)) labels.add(m[1]!);
    series.set(sample[1]!, labels);
  }
  return series;
}

/** What one expression reads: metric names, the label names matched on each, and job matchers. */
function readsOf(expr: string) {
  const tree = parser.parse(expr);
  const errors: string[] = [];
  const selectors: { metric: string; labels: string[]; job?: string }[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(`at ${node.from}: ${JSON.stringify(expr.slice(node.from, node.from + 20))}`);
      if (node.name !== 'VectorSelector') return;
      const metric = node.node.getChild('Identifier');
      const matchers = node.node.getChild('LabelMatchers');
      const text = matchers ? expr.slice(matchers.from, matchers.to) : '';
      selectors.push({
        metric: metric ? expr.slice(metric.from, metric.to) : '',
        labels: [...text.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((m) => m[1]!),
        job: text.match(/\bjob="([^"]+)"/)?.[1],
      });
    },
  });
  return { errors, selectors };
}

/** Labels Prometheus adds itself to every scraped series, and the series it makes per target. */
const TARGET_LABELS = ['job', 'instance'];
const PROMETHEUS_SERIES = new Set(['up']);

let h: Harness;
let api: Map<string, Set<string>>;
let worker: Map<string, Set<string>>;

beforeAll(async () => {
  h = await startHarness({ worker: true });
  const client = h.client('rules-user');
  await client.POST('/api/cron/jobs', {
    body: {
      name: 'every-second',
      type: 'generateReport',
      cron: '* * * * * *',
      payload: { type: 'runs', period: 'day' },
    },
  });
  const probe = createWorkerProbe({ config: h.config, status: h.scheduler.status, ping: () => pingDb(h.conn) });
  // After scheduled runs, so the runs' and fire lag's labels are on their samples.
  const scrapes = await waitFor(
    async () => {
      const workerText = await (await probe.request('/metrics')).text();
      return /^cron_fire_lag_seconds_count\{/m.test(workerText) && workerText;
    },
    { what: 'a scheduled run in the metrics' },
  );
  worker = seriesOf(scrapes);
  api = seriesOf(await (await fetch(`${h.baseUrl}/metrics`)).text());
});
afterAll(() => h.stop());

const allRules = rules.groups.flatMap((g) => g.rules);

describe('docs/prometheus/alerts.yml', () => {
  it('has named groups of alerts, each with an expression, a severity and a summary', () => {
    expect(rules.groups.length).toBeGreaterThan(0);
    expect(allRules.length).toBeGreaterThanOrEqual(8);
    for (const rule of allRules) {
      expect(rule, JSON.stringify(rule)).toMatchObject({
        alert: expect.stringMatching(/^Cron[A-Z]\w+$/),
        expr: expect.any(String),
        labels: { severity: expect.stringMatching(/^(warning|critical)$/) },
        annotations: { summary: expect.any(String) },
      });
      if ('for' in rule) expect(rule.for).toMatch(/^\d+[smh]$/);
    }
    expect(new Set(allRules.map((r) => r.alert)).size).toBe(allRules.length);
  });

  it('covers fire lag, missed slots, failed runs, no worker up, failover and database errors', () => {
    const exprs = allRules.map((r) => String(r.expr)).join('\n');
    for (const needed of [
      'cron_fire_lag_seconds_bucket',
      'outcome="missed"',
      'failed|timedOut|interrupted',
      'cron_worker_up',
      'cron_partitions_held',
      'cron_db_errors_total',
    ])
      expect(exprs).toContain(needed);
  });

  it.each(allRules.map((r) => [r.alert as string, r.expr as string]))(
    '%s parses and reads only series and labels the service serves',
    (_alert, expr) => {
      const { errors, selectors } = readsOf(expr);
      expect(errors).toEqual([]);
      expect(selectors.length).toBeGreaterThan(0);
      for (const s of selectors) {
        if (PROMETHEUS_SERIES.has(s.metric)) continue;
        // A selector on the workers' job must be served by the worker's listener; otherwise by either.
        const served = s.job === 'cron-worker' ? worker : s.job === 'cron-api' ? api : new Map([...api, ...worker]);
        expect(served.has(s.metric), `${s.metric} is not served${s.job ? ` to job ${s.job}` : ''}`).toBe(true);
        const labels = served.get(s.metric)!;
        for (const label of s.labels.filter((l) => !TARGET_LABELS.includes(l)))
          expect(labels.has(label), `${s.metric} has no label ${label}`).toBe(true);
      }
    },
  );
});

describe('docs/prometheus/prometheus.yml', () => {
  it('loads the alert rules and scrapes every job the rules name, at the ports the service uses', () => {
    expect(config.rule_files).toEqual(['alerts.yml']);
    const jobs = new Map(config.scrape_configs.map((c) => [c.job_name, c]));
    const named = new Set(allRules.flatMap((r) => readsOf(String(r.expr)).selectors.map((s) => s.job)));
    for (const job of named) if (job) expect(jobs.has(job), `job ${job}`).toBe(true);
    expect(jobs.get('cron-api')?.static_configs[0]?.targets).toEqual([`127.0.0.1:${h.config.PORT}`]);
    // The PM2 default: WORKER_METRICS_PORT 9464 plus the instance number.
    expect(jobs.get('cron-worker')?.static_configs[0]?.targets).toEqual(['127.0.0.1:9464', '127.0.0.1:9465']);
    for (const c of jobs.values()) expect(c.metrics_path).toBe('/metrics');
  });
});
