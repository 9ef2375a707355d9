import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type RandExpTypes from 'randexp';
import { describe, expect, it } from 'vitest';
import { parseEnv } from '../src/env.js';
import type { JobType } from '../src/jobs/job-type.js';
import { getJobType, jobTypes } from '../src/jobs/registry.js';
import { TIME_ZONES } from '../src/routes/cron/time-zones.js';
import { type CronRules, checkCron, isValidTimezone } from '../src/scheduler/cron.js';

// The `pattern`s the spec publishes for `cron` and `timezone` promise a tool that knows nothing of
// cron that every string they match is accepted (under the default configuration). Checked on
// the committed spec itself: strings generated from each pattern, and a wide net of crons, good
// and bad, of which those the pattern matches must all be accepted.

type Schema = {
  $ref?: string;
  allOf?: Schema[];
  pattern?: string;
  properties?: Record<string, Schema>;
  enum?: string[];
};
const spec = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
const schemas: Record<string, Schema> = spec.components.schemas;
const resolve = (s: Schema): Schema =>
  s.$ref ? resolve(schemas[s.$ref.split('/').pop()!]!) : s.allOf ? resolve(s.allOf[0]!) : s;
const patternOf = (s: Schema) => resolve(s).pattern!;
const previewParam = (name: string) =>
  spec.paths['/api/cron/preview'].get.parameters.find((p: { name: string }) => p.name === name).schema as Schema;

const DEFAULTS = parseEnv({});
const rulesOf = (type: JobType): CronRules => ({
  allowSeconds: DEFAULTS.CRON_ALLOW_SECONDS,
  minIntervalSeconds: Math.max(DEFAULTS.CRON_MIN_INTERVAL_SECONDS, type.minIntervalSeconds ?? 0),
});

/** Every cron a request can carry, with the job types whose rules a value there must pass. */
const cronFields = [
  ...(schemas.CronJobInput as { oneOf: Schema[] }).oneOf.map((variant) => {
    const body = resolve(variant);
    return {
      where: `${variant.$ref!.split('/').pop()}.cron (POST, PUT)`,
      pattern: patternOf(body.properties!.cron!),
      types: [getJobType(body.properties!.type!.enum![0]!)!],
    };
  }),
  { where: 'CronJobPatch.cron (PATCH)', pattern: patternOf(schemas.CronJobPatch!.properties!.cron!), types: jobTypes },
  { where: 'cron (GET /preview)', pattern: patternOf(previewParam('cron')), types: jobTypes },
];

// CommonJS whose types describe an ES default export: required, with the types of that export.
const RandExp = createRequire(import.meta.url)('randexp') as typeof RandExpTypes.default;

/** Seeded (mulberry32), so a failure reproduces. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(pattern: string, next: () => number) {
  const randexp = new RandExp(pattern);
  randexp.randInt = (from: number, to: number) => from + Math.floor(next() * (to - from + 1));
  return () => randexp.gen();
}

/** The crons among `crons` some of `types` refuses, each with the reason, in `zone` picked per cron. */
function refused(crons: string[], types: readonly JobType[], next: () => number) {
  const problems: string[] = [];
  for (const cron of crons) {
    const zone = TIME_ZONES[Math.floor(next() * TIME_ZONES.length)]!;
    for (const type of types) {
      const problem = checkCron(cron, zone, rulesOf(type));
      if (problem) problems.push(`${JSON.stringify(cron)} in ${zone} for ${type.name}: ${problem}`);
    }
  }
  return problems;
}

describe('the published cron patterns', () => {
  it('are published on every cron a request carries', () => {
    expect(cronFields).toHaveLength(jobTypes.length + 2);
    for (const field of cronFields) expect(field.pattern, field.where).toMatch(/^\^.*\$$/);
  });

  it.each(cronFields)('every string generated from the pattern of $where is accepted', ({ pattern, types }) => {
    const next = random(20261207);
    const generate = generator(pattern, next);
    const crons = Array.from({ length: 2000 }, generate);
    const regex = new RegExp(pattern);
    expect(crons.filter((cron) => !regex.test(cron))).toEqual([]);
    // The generator explores the pattern rather than repeating a few strings.
    expect(new Set(crons).size).toBeGreaterThan(1500);
    expect(refused(crons, types, next)).toEqual([]);
  });

  it.each(cronFields)(
    'of a wide net of crons, good and bad, $where matches only accepted ones',
    ({ pattern, types }) => {
      const next = random(7);
      const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
      const int = (from: number, to: number) => from + Math.floor(next() * (to - from + 1));
      // Values a little past each field's range, ranges either way round, steps from 0, lists
      // with repeats and ranges in them: what the pattern must keep out as well as what it takes.
      const term = (min: number, max: number): string =>
        pick([
          () => '*',
          () => `*/${int(0, max + 1)}`,
          () => `${int(min - 1, max + 1)}`,
          () => `${int(min, max)}-${int(min, max)}`,
          () => `${int(min, max)}-${int(min, max)}/${int(0, max)}`,
          () => `${int(min, max)},${int(min, max)}`,
          () => `${int(min, max)},${int(min, max)},${int(min, max)}`,
          () => `${int(min, max)}-${int(min, max)},${int(min, max)}`,
        ])();
      const crons = Array.from({ length: 20_000 }, () =>
        [term(0, 59), term(0, 23), pick([() => term(1, 31), () => `${int(28, 31)}`])(), term(1, 12), term(0, 7)].join(
          ' ',
        ),
      );
      const regex = new RegExp(pattern);
      const matched = crons.filter((cron) => regex.test(cron));
      expect(matched.length).toBeGreaterThan(200);
      expect(refused(matched, types, next)).toEqual([]);
    },
  );

  it('keep out what the service refuses: reversed ranges, step 0, repeats, days no month named has', () => {
    const general = new RegExp(patternOf(schemas.Cron!));
    for (const cron of [
      '5-1 * * * *',
      '*/0 * * * *',
      '0,0 * * * *',
      '0 0 * * 0,7',
      '60 * * * *',
      '0 24 * * *',
      '0 0 0 * *',
      '0 0 31 2 *',
      '0 0 30 2 *',
      '0 0 31 4 *',
      '0 0 31 2-3/2 *',
      '0 0 30,31 2 *',
      '0 * * * * *',
      '@daily',
    ]) {
      expect(checkCron(cron, 'UTC', rulesOf(getJobType('sendEmail')!)), cron).toBeDefined();
      expect(general.test(cron), cron).toBe(false);
    }
  });

  it('take the common forms: numbers, *, */n, ascending ranges and lists, 30 and 31 with months that have them', () => {
    const general = new RegExp(patternOf(schemas.Cron!));
    const hourly = new RegExp(patternOf(schemas.CronMinInterval3600!));
    for (const cron of [
      '0 8 * * 1-5',
      '30 7 * * 1-5',
      '0 */2 * * *',
      '0 9-17 * * 1-5',
      '0 8,12,18 * * *',
      '0 0 31 12 *',
    ]) {
      expect(general.test(cron), cron).toBe(true);
      expect(hourly.test(cron), cron).toBe(true);
    }
    for (const cron of ['*/15 * * * *', '0,30 9-17 * * *', '0-30/10 * 1,15 * 0', '0 0 30 4,6,9,11 *', '0 0 29 2 *'])
      expect(general.test(cron), cron).toBe(true);
    // A type that needs an hour between fires: the pattern takes one minute only, as the rule does.
    const purge = rulesOf(getJobType('purgeSessions')!);
    expect(checkCron('*/15 * * * *', 'UTC', purge)).toMatch(/minimum interval is 3600 s/);
    expect(hourly.test('*/15 * * * *')).toBe(false);
  });

  it('leave out forms the service takes too, as the description says', () => {
    const general = new RegExp(patternOf(schemas.Cron!));
    expect((schemas.Cron as { description: string }).description).toMatch(/MON-FRI.*`L`.*`\?`.*9-12,14-17/);
    for (const cron of ['0 8 * * MON-FRI', '0 0 L * *', '0 0 ? * *', '0 9-12,14-17 * * *']) {
      expect(checkCron(cron, 'UTC', rulesOf(getJobType('sendEmail')!)), cron).toBeUndefined();
      expect(general.test(cron), cron).toBe(false);
    }
  });

  it("match the crons of the documentation's examples that the service accepts", () => {
    const general = new RegExp(patternOf(schemas.Cron!));
    const docs = readdirSync(new URL('../docs/', import.meta.url))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `../docs/${f}`);
    const text = ['../README.md', '../generated/README.md', ...docs].map((f) =>
      readFileSync(new URL(f, import.meta.url), 'utf8'),
    );
    const crons = text.flatMap((t) =>
      [...t.matchAll(/(?:`|"|'|cron=)((?:[0-9A-Za-z*/,?#-]+ ){4,5}[0-9A-Za-z*/,?#-]+)(?=`|"|')/g)].map((m) => m[1]!),
    );
    expect(crons).toEqual(expect.arrayContaining(['0 8 * * 1-5', '30 7 * * 1-5', '30 2 * * *', '0 6 * * 1']));
    const accepted = crons.filter((cron) => !checkCron(cron, 'UTC', rulesOf(getJobType('sendEmail')!)));
    expect(accepted.length).toBeGreaterThan(15);
    expect(accepted.filter((cron) => !general.test(cron))).toEqual([]);
  });
});

describe('the published time zone pattern', () => {
  const pattern = patternOf(schemas.TimeZone!);

  it('is used for every time zone a request carries', () => {
    for (const name of [
      'SendEmailJob',
      'PurgeSessionsJob',
      'GenerateReportJob',
      'CleanupOldAuditLogsJob',
      'CronJobPatch',
    ])
      expect(patternOf(schemas[name]!.properties!.timezone!), name).toBe(pattern);
    expect(patternOf(previewParam('timezone'))).toBe(pattern);
  });

  it('names only zones this runtime knows, so the service accepts every one', () => {
    expect(TIME_ZONES.length).toBeGreaterThan(590);
    expect(TIME_ZONES.filter((zone) => !isValidTimezone(zone))).toEqual([]);
  });

  it('matches exactly the list: every name, and nothing generated from it that is not one', () => {
    const regex = new RegExp(pattern);
    expect(TIME_ZONES.filter((zone) => !regex.test(zone))).toEqual([]);
    const names = new Set(TIME_ZONES);
    const generate = generator(pattern, random(3));
    const drawn = Array.from({ length: 3000 }, generate);
    expect(drawn.filter((zone) => !names.has(zone))).toEqual([]);
    expect(new Set(drawn).size).toBeGreaterThan(300);
    for (const zone of ['Europe/Berlinx', 'Mars/Olympus_Mons', 'europe/berlin', 'Etc/GMT+15', ' UTC'])
      expect(regex.test(zone), zone).toBe(false);
  });

  it('is a fixed list, not the runtime time zone data: aliases included, the same on every Node', () => {
    const regex = new RegExp(pattern);
    for (const zone of [
      'US/Eastern',
      'Asia/Calcutta',
      'Asia/Kolkata',
      'Europe/Kiev',
      'Europe/Kyiv',
      'Etc/GMT+5',
      'UTC',
    ])
      expect(regex.test(zone), zone).toBe(true);
    expect(Intl.supportedValuesOf('timeZone')).not.toContain('US/Eastern');
  });
});
