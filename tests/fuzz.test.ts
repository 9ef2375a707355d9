import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain .mjs script without types (it runs before dependencies exist)
import { ensureSchemathesis, SCHEMATHESIS_VERSION } from '../scripts/ensure-schemathesis.mjs';
import { parseEnv } from '../src/env.js';
import { type Harness, startHarness } from './helpers/harness.js';

/**
 * Schemathesis against the real service, from its served /openapi.json alone: no hooks, nothing
 * taught about cron or time zones beyond the spec's patterns. First the project's run: every
 * check, all phases (examples, coverage, fuzzing, stateful via the spec's links), an admin token
 * so admin-only types and filters are reachable, and tests/fuzz/schemathesis.toml for the answers
 * that depend on stored state; 0 failures expected, the case count printed and written to
 * .local/fuzz/summary.txt. Then a stock run as a partner would start it, without that file.
 */

const root = fileURLToPath(new URL('..', import.meta.url));
// Enough for every phase on every operation within a couple of minutes on the CI machine; a
// fixed seed so a failure in CI reproduces locally (`npm run fuzz`). FUZZ_SEED and
// FUZZ_MAX_EXAMPLES explore further by hand, e.g. FUZZ_SEED=$RANDOM FUZZ_MAX_EXAMPLES=500 npm run fuzz.
const MAX_EXAMPLES = Number(process.env.FUZZ_MAX_EXAMPLES ?? 100);
const SEED = Number(process.env.FUZZ_SEED ?? 20261130);

let h: Harness;
let bin: string;

beforeAll(async () => {
  bin = ensureSchemathesis() as string;
  // The default cron rules (the tests' own allow seconds and a 1 s interval): the spec's
  // patterns promise what a service with the defaults accepts, and nothing beyond it.
  // No job cap: the fuzzer creates a few hundred jobs as one admin, and each created job is
  // where the stateful phase starts.
  const defaults = parseEnv({});
  h = await startHarness({
    env: {
      MAX_JOBS_PER_OWNER: '100000',
      CRON_ALLOW_SECONDS: String(defaults.CRON_ALLOW_SECONDS),
      CRON_MIN_INTERVAL_SECONDS: String(defaults.CRON_MIN_INTERVAL_SECONDS),
    },
  });
}, 600_000);
afterAll(() => h?.stop());

/**
 * Schemathesis's summary for the console, without its pytest-style closing rule
 * ("==== 1 warning in 65.17s ===="): CI reads such a line as pytest's own verdict and took the
 * whole run for one that executed no test. The full output is kept under .local/fuzz/.
 */
function consoleSummary(output: string): string {
  return output
    .slice(output.indexOf('=== SUMMARY'))
    .split('\n')
    .filter((line) => !/^=+ .* in [\d.]+s =+$/.test(line.trim()))
    .join('\n');
}

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(bin, args, {
      // Schemathesis and Hypothesis keep caches in the working directory: inside .local, not the repo.
      cwd: `${root}.local/fuzz`,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', fail);
    child.on('close', (code) => ok({ code, output }));
  });
}

describe('contract fuzzing (Schemathesis)', () => {
  it('finds no failure in any check, phase or operation', async () => {
    // Valid well past any run's length, so no late case meets an expired token.
    const token = await h.token('fuzzer', { admin: true, expiresInSeconds: 3600 });
    await mkdir(`${root}.local/fuzz`, { recursive: true });
    const started = Date.now();
    const { code, output } = await run([
      '--config-file',
      `${root}tests/fuzz/schemathesis.toml`,
      'run',
      `${h.baseUrl}/openapi.json`,
      '--checks',
      'all',
      '--phases',
      'examples,coverage,fuzzing,stateful',
      '--max-examples',
      String(MAX_EXAMPLES),
      '--seed',
      String(SEED),
      '--generation-database',
      'none',
      '--header',
      `Authorization: Bearer ${token}`,
      '--no-color',
    ]);
    const seconds = Math.round((Date.now() - started) / 1000);
    const cases = Number(/(\d+) generated/.exec(output)?.[1] ?? NaN);
    const summary = consoleSummary(output);
    await mkdir(`${root}.local/fuzz`, { recursive: true });
    await writeFile(
      `${root}.local/fuzz/summary.txt`,
      `schemathesis ${SCHEMATHESIS_VERSION}, ${cases} cases, ${seconds} s\n\n${output}`,
    );
    console.log(
      `schemathesis ${SCHEMATHESIS_VERSION}: ${cases} generated test cases in ${seconds} s, exit ${code}\n${summary}`,
    );

    // The whole report on failure: which check, the response, a curl to reproduce it.
    expect(code, output).toBe(0);
    expect(output).toMatch(/Selected: (\d+)\/\1/);
    expect(output).not.toMatch(/Errors:|Failures:/);
    expect(cases).toBeGreaterThan(500);
    // Stateful testing followed the spec's links from created jobs.
    expect(output).toMatch(/API Links:\s+[1-9]\d* covered/);
  }, 900_000);
});

/** The operations whose requests carry a cron or a time zone. */
const CRON_OPERATIONS = ['createJob', 'replaceJob', 'updateJob', 'previewCron'];

interface Outcome {
  /** Method and path as sent, e.g. `PUT /api/cron/jobs/6650f1c2a8b4e9d2c4a1b2c3` (stateful steps included). */
  request: string;
  /** The cron and time zone it carried, in the body or the query. */
  sent: { cron?: unknown; timezone?: unknown };
  status: number;
  answer: { errors?: { path: string }[] };
  /** The checks this case failed. */
  failed: string[];
}

/** Every case of a run from its NDJSON report, with what it sent, the answer and the checks it failed. */
async function outcomes(ndjson: string): Promise<Outcome[]> {
  // Bodies as JSON where they are (negative cases send other bytes too).
  const decode = (content?: { $base64: string }): Record<string, unknown> => {
    try {
      const value = JSON.parse(Buffer.from(content?.$base64 ?? '', 'base64').toString('utf8'));
      return value !== null && typeof value === 'object' ? value : {};
    } catch {
      return {};
    }
  };
  const all: Outcome[] = [];
  for (const line of (await readFile(ndjson, 'utf8')).split('\n').filter(Boolean)) {
    const recorder = JSON.parse(line).ScenarioFinished?.recorder;
    for (const [id, { request, response }] of Object.entries<any>(recorder?.interactions ?? {})) {
      if (!response) continue;
      const url = new URL(request.uri);
      const body = decode(request.body);
      all.push({
        request: `${request.method} ${url.pathname}`,
        sent: { ...Object.fromEntries(url.searchParams), ...body },
        status: response.status_code,
        answer: decode(response.content),
        failed: (recorder.checks?.[id] ?? [])
          .filter((check: { status: string }) => check.status === 'failure')
          .map((check: { name: string }) => check.name),
      });
    }
  }
  return all;
}

/**
 * What tests/fuzz/schemathesis.toml accepts in the project's run: answers that depend on the
 * stored state, not on the data (a stale If-Match, a reused Idempotency-Key, a PATCH payload for
 * another type than the stored one). A stock run cannot know them; anything else is a finding.
 */
const dependsOnState = (o: Outcome) =>
  o.failed.every((check) => check === 'positive_data_acceptance') &&
  ((o.status === 412 && /^(PUT|PATCH) \/api\/cron\/jobs\/[^/]+$/.test(o.request)) ||
    (o.status === 422 && o.request === 'POST /api/cron/jobs') ||
    (o.status === 400 && o.request.startsWith('PATCH ')));

describe('a stock Schemathesis run (no hooks, no configuration), as a partner would start it', () => {
  it('gets no schema-valid cron or time zone refused, and no failure but the state-dependent answers', async () => {
    const token = await h.token('partner', { admin: true, expiresInSeconds: 3600 });
    const report = `${root}.local/fuzz/stock.ndjson`;
    await rm(report, { force: true });
    const started = Date.now();
    // Bounded to the operations that carry a cron or a time zone, and without the coverage
    // phase (the project's run above covers that phase with every check): well under a minute.
    const { code, output } = await run([
      'run',
      `${h.baseUrl}/openapi.json`,
      ...CRON_OPERATIONS.flatMap((id) => ['--include-operation-id', id]),
      '--phases',
      'examples,fuzzing,stateful',
      '--max-examples',
      '40',
      '--seed',
      String(SEED),
      '--generation-database',
      'none',
      '--continue-on-failure',
      '--header',
      `Authorization: Bearer ${token}`,
      '--report',
      'ndjson',
      '--report-ndjson-path',
      report,
      '--no-color',
    ]);
    const seconds = Math.round((Date.now() - started) / 1000);
    await writeFile(
      `${root}.local/fuzz/stock-summary.txt`,
      `schemathesis ${SCHEMATHESIS_VERSION}, ${seconds} s\n\n${output}`,
    );
    console.log(`stock schemathesis run: ${seconds} s, exit ${code}\n${consoleSummary(output)}`);

    // Exit 1 is the state-dependent failures below; anything else is a crash.
    expect([0, 1], output).toContain(code);
    expect(output).toMatch(new RegExp(`Selected: ${CRON_OPERATIONS.length}/\\d+`));
    expect(output).not.toMatch(/Errors:/);
    const cases = await outcomes(report);
    const failed = cases.filter((o) => o.failed.length > 0);
    const aboutCronOrZone = failed.filter((o) =>
      o.answer.errors?.some((e) => e.path === 'cron' || e.path === 'timezone'),
    );
    expect(aboutCronOrZone).toEqual([]);
    expect(failed.filter((o) => !dependsOnState(o))).toEqual([]);
    // The crons and zones it generated reached the service and were taken, in bodies and queries.
    const taken = cases.filter((o) => o.status < 300 && typeof o.sent.cron === 'string');
    expect(new Set(taken.map((o) => o.sent.cron)).size).toBeGreaterThan(20);
    expect(new Set(taken.map((o) => o.sent.timezone).filter(Boolean)).size).toBeGreaterThan(8);
    expect(taken.filter((o) => o.request === 'GET /api/cron/preview').length).toBeGreaterThan(15);
  }, 300_000);
});
