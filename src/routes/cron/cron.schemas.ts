import { z } from '@hono/zod-openapi';
import { parseEnv } from '../../env.js';
import { MISFIRE_POLICIES, OVERLAP_POLICIES } from '../../jobs/job-policies.js';
import { jobDefaultsOf, minIntervalOf } from '../../jobs/job-type.js';
import { jobTypeNames, jobTypes } from '../../jobs/registry.js';
import { int32 } from '../../lib/int32.js';
import { JOB_STATUSES } from '../../models/cron-job.model.js';
import { RUN_STATUSES, RUN_TRIGGERS } from '../../models/run.model.js';
import { CRON_KINDS, checkCron, DST_NOTES, isValidTimezone } from '../../scheduler/cron.js';
import { cronPattern } from './cron-pattern.js';
import { timeZonePattern } from './time-zones.js';

/** The longest texts a job or run carries that the service does not check on input (cron.mappers.ts clips). */
export const TEXT_LIMITS = { reason: 2000, worker: 255, owner: 255 };
/** A job's or run's id as the API writes it. */
const objectId = z
  .string()
  .max(24)
  .regex(/^[0-9a-f]{24}$/);
/** Counters and durations: 32-bit, never negative. */
const count32 = int32(0);

/**
 * Any string: an id that is not a job id (malformed included) is answered exactly like a job
 * that does not exist, 404, so the shape of ids is never a way to probe.
 */
export const ObjectIdParam = z.object({
  id: z
    .string()
    .max(100)
    .openapi({
      param: { name: 'id', in: 'path' },
      description: 'The job id (24 hexadecimal characters); any other value (up to 100 characters) is a 404.',
      example: '6650f1c2a8b4e9d2c4a1b2c3',
    }),
});

/** Optional `If-Match` (RFC 9110 section 13.1.1) on the writes of one job. */
export const IfMatchHeader = z.object({
  'if-match': z
    .string()
    .max(1000)
    .optional()
    .openapi({
      param: { in: 'header' },
      description:
        "The job's `ETag` as you read it (or `*`): the write happens only if the job is still that version, else 412.",
      example: '"3f1c0a9e5b7d2c4a"',
    }),
});

/** Optional `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header) on the non-idempotent POSTs. */
export const IdempotencyKeyHeader = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    // What the middleware accepts (visible ASCII, bare or as a quoted sf-string), published so a
    // key the spec allows is never refused (Schemathesis sent non-ASCII keys within 1-255).
    .regex(/^(?:"[\x21-\x7e]{1,253}"|(?!""$)[\x21-\x7e]{1,255})$/, 'must be 1-255 visible ASCII characters')
    .optional()
    .openapi({
      param: { in: 'header' },
      description:
        'A unique value (e.g. a UUID) per intended operation. Repeating the request with the same key and body ' +
        'replays the first response (with `Idempotent-Replayed: true`) instead of doing it twice; the same key ' +
        'with another body is 422, while the first is still in progress 409. Keys are kept per user for at least ' +
        '24 hours.',
      example: '8e03978e-40d5-43e8-bc93-6894a57f9324',
    }),
});

// Checked as sent, then trimmed: checking after the trim let a blank name pass the spec's
// minLength but fail here, and a 101-character name with a trailing space pass here but not
// the spec's maxLength (both found by Schemathesis).
const name = z
  .string()
  .min(1)
  .max(100)
  .regex(/\S/, 'must not be blank')
  .trim()
  .openapi({ description: 'Unique per owner, 1-100 characters.', example: 'Morning digest' });
// Syntax only, so a bad cron is reported with the other field errors; the configured rules
// (seconds allowed, minimum interval) are the scheduler module's to apply.
const cronSyntax = { allowSeconds: true, minIntervalSeconds: 1 };
/** What a deployment applies unless configured otherwise, and so what the published patterns promise. */
const DEFAULT_MIN_INTERVAL = parseEnv({}).CRON_MIN_INTERVAL_SECONDS;
const cronDescription = [
  `Five fields: minute hour day-of-month month day-of-week, evaluated in \`timezone\`.`,
  `A leading seconds field only where the service allows it.`,
  `Fires closer together than the minimum interval (${DEFAULT_MIN_INTERVAL} s by default) are refused.`,
  `The \`pattern\` matches crons every service with the default rules accepts: fields separated by single spaces,`,
  `each \`*\`, \`*/n\`, a number, an ascending range \`a-b\` or \`a-b/n\`, or an ascending list of numbers \`a,b,c\``,
  `(no leading zeros); a day of month of 30 or 31 only with a month that has it.`,
  `The service also accepts forms the pattern leaves out, such as names (\`MON-FRI\`), \`L\`, \`?\``,
  `and lists of ranges (\`9-12,14-17\`).`,
].join(' ');

const minIntervalUnderDefaults = (t: (typeof jobTypes)[number]) =>
  minIntervalOf(t, { CRON_MIN_INTERVAL_SECONDS: DEFAULT_MIN_INTERVAL });
/** Where the request does not fix the job type (PATCH, the preview): the crons every type accepts. */
const STRICTEST = Math.max(...jobTypes.map(minIntervalUnderDefaults));

/**
 * A cron whose fires are at least `minIntervalSeconds` apart under the default rules, as a named
 * schema with the pattern of the crons that surely are (cron-pattern.ts): tools that know nothing
 * of cron generate and check values from it. The format names what it is for readers.
 */
function cronField(minIntervalSeconds: number) {
  const own = minIntervalSeconds > DEFAULT_MIN_INTERVAL;
  const narrowed = minIntervalSeconds > 3600 ? 'the minute and the hour single numbers' : 'the minute a single number';
  const anyType =
    minIntervalSeconds === STRICTEST
      ? ' It is also the pattern where the request does not fix the job type (PATCH, the preview), the one every ' +
        'type accepts: a type with a shorter minimum interval takes other crons too, such as `*/15 * * * *`.'
      : '';
  return z
    .string()
    .min(1)
    .max(100)
    .superRefine((value, ctx) => {
      const problem = checkCron(value, 'UTC', cronSyntax);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .openapi(own ? `CronMinInterval${minIntervalSeconds}` : 'Cron', {
      format: 'cron',
      pattern: cronPattern(minIntervalSeconds),
      description: own
        ? `A cron as in \`Cron\` whose fires are at least ${minIntervalSeconds} s apart, ` +
          `as jobs of some types must be: its pattern has ${narrowed}.${anyType}`
        : cronDescription,
      example: '0 8 * * 1-5',
    });
}
/** One schema per minimum interval the types have (the strictest among them). */
const cronSchemas = new Map(
  [...new Set(jobTypes.map(minIntervalUnderDefaults))].map((seconds) => [seconds, cronField(seconds)]),
);
const cronApart = (seconds: number) => cronSchemas.get(seconds)!;

/**
 * Registered ahead of the routes (cron.index.ts): zod-to-openapi names a schema's `.default()`
 * wrapper after the schema itself, so the first use it met, a job body's `timezone` with its
 * default UTC, would become the component, and PATCH's optional `timezone` would inherit it.
 */
export const TimeZone = z
  .string()
  .max(100)
  .refine(isValidTimezone, 'must be an IANA time zone such as Europe/Berlin')
  .openapi('TimeZone', {
    format: 'iana-time-zone',
    pattern: timeZonePattern(),
    description:
      'IANA time zone the cron is evaluated in. Interval crons (hour `*`) follow real time; a time a ' +
      'spring-forward change skips fires once, shifted by the gap; a time a fall-back change repeats fires once, ' +
      'at its first occurrence. See GET /api/cron/preview. The `pattern` lists the names of the IANA tz database ' +
      '2025b (aliases such as `US/Eastern` included); the service accepts any other zone its time zone data ' +
      'knows as well.',
    example: 'Europe/Berlin',
  });
// The default restated for the spec: on a use of a named schema zod-to-openapi leaves it out.
const timezoneOrUtc = TimeZone.default('UTC').openapi({ default: 'UTC' });
const enabled = z
  .boolean()
  .openapi({ description: 'false pauses the job; true resumes it (and clears an automatic pause).' });
const overlap = z.enum(OVERLAP_POLICIES).openapi({
  description:
    'forbid: a slot that comes while the previous run of this job is still going is not run but recorded as a ' +
    '`skipped` run. allow: it runs alongside.',
});
const misfirePolicy = z.enum(MISFIRE_POLICIES).openapi({
  description:
    'What happens to slots no worker fired in time (workers down, database out). Each is recorded as a `missed` ' +
    'run either way. runOnce: one run with trigger `catchup` makes up for them; skip: none. Then the job is back ' +
    'on its cron.',
});

const pascal = (name: string) => `${name[0]!.toUpperCase()}${name.slice(1)}`;

/**
 * `.openapi(name)` through the prototype zod-to-openapi extended: a schema built before
 * @hono/zod-openapi was first imported (a job type loaded first, as in a test) lacks the method.
 */
type Openapi = (this: z.ZodType, refId: string) => z.ZodType;
const named = <T extends z.ZodType>(schema: T, refId: string) =>
  (z.ZodType.prototype as unknown as { openapi: Openapi }).openapi.call(schema, refId) as T;

/**
 * Each type's payload as a named schema (`SendEmailPayload`...): the body variant of its type and
 * its catalog entry's `example` both point at it, so clients get one type per payload.
 */
export const payloadSchemas = new Map(
  jobTypes.map((t) => [t.name, namedPayload(t.payload, `${pascal(t.name)}Payload`)]),
);

/**
 * A payload schema as a named one; a discriminated union's options are named too
 * (`SendEmailPayloadDigest`...): code generators (openapi-python-client) fail on a named union
 * whose options are inline and used from two places.
 */
function namedPayload<T extends z.ZodType>(schema: T, refId: string): T {
  if (!(schema instanceof z.ZodDiscriminatedUnion)) return named(schema, refId);
  const key = schema._zod.def.discriminator;
  const options = (schema.options as z.ZodObject[]).map((option) => {
    const value = String((option.shape[key] as z.ZodLiteral).value);
    return named(option, `${refId}${pascal(value)}`);
  });
  return named(z.discriminatedUnion(key, options as [z.ZodObject, ...z.ZodObject[]]), refId) as unknown as T;
}

/** One body variant per job type, so each type's payload schema is published in the spec. */
const variants = jobTypes.map((t) =>
  z
    .strictObject({
      name,
      type: z.literal(t.name),
      cron: cronApart(minIntervalUnderDefaults(t)),
      timezone: timezoneOrUtc,
      payload: payloadSchemas.get(t.name)!,
      enabled: enabled.default(true),
      overlap: overlap.default(jobDefaultsOf(t).overlap),
      misfirePolicy: misfirePolicy.default(jobDefaultsOf(t).misfirePolicy),
    })
    .openapi(`${pascal(t.name)}Job`, { description: t.summary }),
);

export const CronJobInput = z
  .discriminatedUnion('type', variants as unknown as [(typeof variants)[number], ...(typeof variants)[number][]])
  .openapi('CronJobInput', {
    // A type every user may create as it stands: a sendEmail example would name a recipient that only
    // some callers may email (GET /api/cron/job-types gives each caller one they may).
    example: {
      name: 'Weekly report',
      type: 'generateReport',
      cron: '0 6 * * 1',
      timezone: 'Europe/Berlin',
      payload: { type: 'runs', period: 'week' },
      enabled: true,
    },
  });

export const CronJobPatch = z
  .strictObject({
    name: name.optional(),
    type: z
      .enum(jobTypeNames)
      .optional()
      .openapi({ description: 'Changing the type needs a payload valid for the new type.' }),
    cron: cronApart(STRICTEST).optional(),
    timezone: TimeZone.optional(),
    payload: z
      .record(z.string(), z.unknown())
      .optional()
      .openapi({ description: "Replaces the whole payload; validated against the job's type." }),
    enabled: enabled.optional(),
    overlap: overlap.optional(),
    misfirePolicy: misfirePolicy.optional(),
  })
  .openapi('CronJobPatch', { example: { enabled: false } });

const date = z.iso.datetime().max(30).openapi({ example: '2026-12-01T07:00:00.000Z' });

/** Whole-object examples for the reference: what a response really looks like. */
const exampleJob = {
  id: '6650f1c2a8b4e9d2c4a1b2c3',
  name: 'Morning digest',
  type: 'sendEmail',
  cron: '0 8 * * 1-5',
  timezone: 'Europe/Berlin',
  payload: { to: 'alice@example.com', subject: 'Your digest', template: 'digest', params: { count: 3 } },
  enabled: true,
  ownerId: 'alice',
  lastRunAt: '2026-11-30T07:00:00.012Z',
  nextRunAt: '2026-12-01T07:00:00.000Z',
  status: 'idle',
  overlap: 'forbid',
  misfirePolicy: 'runOnce',
  pausedReason: null,
  consecutiveFailures: 0,
  createdAt: '2026-11-20T09:14:03.512Z',
  updatedAt: '2026-11-20T09:14:03.512Z',
} as const;
/** What run-now answers: a manual run, queued, not started yet. */
export const exampleQueuedRun = {
  id: '6650fa31a8b4e9d2c4a1b2e1',
  jobId: '6650f1c2a8b4e9d2c4a1b2c3',
  scheduledFor: '2026-11-30T09:12:44.301Z',
  trigger: 'manual',
  status: 'queued',
  startedAt: null,
  finishedAt: null,
  durationMs: null,
  error: null,
  result: null,
  worker: null,
  attempts: 0,
  createdAt: '2026-11-30T09:12:44.301Z',
} as const;
const exampleRun = {
  id: '6650f9e0a8b4e9d2c4a1b2d7',
  jobId: '6650f1c2a8b4e9d2c4a1b2c3',
  scheduledFor: '2026-11-30T07:00:00.000Z',
  trigger: 'schedule',
  status: 'succeeded',
  startedAt: '2026-11-30T07:00:00.012Z',
  finishedAt: '2026-11-30T07:00:00.187Z',
  durationMs: 175,
  error: null,
  result: { messageId: '<run-6650f9e0a8b4e9d2c4a1b2d7@cron-jobs>' },
  worker: 'worker-1',
  attempts: 1,
  createdAt: '2026-11-30T07:00:00.009Z',
} as const;

export const CronJob = z
  .object({
    id: objectId.openapi({ example: '6650f1c2a8b4e9d2c4a1b2c3' }),
    name: z.string().max(100),
    type: z.enum(jobTypeNames),
    cron: z.string().max(100),
    timezone: z.string().max(100),
    payload: z
      .record(z.string(), z.unknown())
      .openapi({ description: "The job's payload, valid for its `type` (see the type's schema in `CronJobInput`)." }),
    enabled: z.boolean(),
    ownerId: z.string().max(TEXT_LIMITS.owner),
    lastRunAt: date.nullable(),
    nextRunAt: date.nullable().openapi({ description: 'The next fire from cron and timezone; null while paused.' }),
    status: z.enum(JOB_STATUSES),
    overlap,
    misfirePolicy,
    pausedReason: z.string().max(TEXT_LIMITS.reason).nullable().openapi({
      description:
        'Set when the service paused the job itself, after too many failed runs in a row; resuming clears it.',
    }),
    consecutiveFailures: count32.openapi({ description: 'Scheduled runs that failed in a row.' }),
    createdAt: date,
    updatedAt: date,
  })
  .openapi('CronJob', { example: exampleJob });

/**
 * Fields of a job (and of its stored document) that the service alone sets. A body that
 * carries one is refused naming it as server-owned: the input schemas are strict, this only
 * makes the reason plain (mass assignment, OWASP API3).
 */
export const SERVER_OWNED_FIELDS: ReadonlySet<string> = new Set([
  ...Object.keys(CronJob.shape).filter((key) => !(key in CronJobPatch.shape)),
  '_id',
  '__v',
  'slotsFrom',
  'lastSlotAt',
  'lastScheduledRunId',
  'lastManualRunId',
  'payloadAuthorEmail',
]);

const limit = z.coerce
  .number()
  .int()
  .min(1)
  .max(100)
  .default(20)
  .openapi({ description: 'Page size, 1-100.', example: 20, format: 'int32' });
const cursor = z
  .string()
  .max(24)
  .regex(/^[0-9a-fA-F]{24}$/, 'must be a nextCursor from a previous page')
  .optional()
  .openapi({
    description: 'The `nextCursor` of the previous page.',
  });

export const ListJobsQuery = z.strictObject({
  enabled: z.enum(['true', 'false']).optional().openapi({ description: 'Only enabled (true) or paused (false) jobs.' }),
  type: z.enum(jobTypeNames).optional(),
  ownerId: z
    .string()
    .min(1)
    .max(TEXT_LIMITS.owner)
    .optional()
    .openapi({ description: "Admins only: another owner's jobs." }),
  limit,
  cursor,
});

export const CronJobPage = z
  .object({
    items: z.array(CronJob).max(100),
    nextCursor: objectId.nullable().openapi({ description: 'null on the last page.' }),
  })
  .openapi('CronJobPage', { example: { items: [exampleJob], nextCursor: null } });

export const Run = z
  .object({
    id: objectId,
    jobId: objectId,
    scheduledFor: date.openapi({
      description:
        'The cron slot (for a catch-up run, the latest slot it makes up for), or the request time of a manual run.',
    }),
    trigger: z.enum(RUN_TRIGGERS),
    status: z.enum(RUN_STATUSES),
    startedAt: date.nullable(),
    finishedAt: date.nullable(),
    durationMs: z.number().min(0).nullable(),
    error: z.string().max(TEXT_LIMITS.reason).nullable(),
    result: z.record(z.string(), z.unknown()).nullable().openapi({ description: 'What the handler reported.' }),
    worker: z.string().max(TEXT_LIMITS.worker).nullable(),
    attempts: count32.openapi({ description: 'Attempts made, retries included; 0 for a run that never started.' }),
    createdAt: date,
  })
  .openapi('Run', { example: exampleRun });

export const ListRunsQuery = z.strictObject({ limit, cursor });

export const RunPage = z
  .object({ items: z.array(Run).max(100), nextCursor: objectId.nullable() })
  .openapi('RunPage', { example: { items: [exampleRun], nextCursor: '6650f9e0a8b4e9d2c4a1b2d7' } });

// GET /api/cron/preview

export const PREVIEW_MAX_COUNT = 50;

// ASCII digits spelled out: \d in a JSON Schema pattern is any Unicode digit for some generators.
const YEAR = '(?:19[7-9][0-9]|2[01][0-9][0-9])';
const LEAP_YEAR = '(?:19(?:7[26]|8[048]|9[26])|20(?:[02468][048]|[13579][26])|21(?:0[48]|[2468][048]|[13579][26]))';
const PREVIEW_FROM = new RegExp(
  `^(?:${LEAP_YEAR}-02-29|${YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8])))` +
    'T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$',
);

export const CronPreviewQuery = z.strictObject({
  cron: cronApart(STRICTEST).openapi({
    param: {
      name: 'cron',
      in: 'query',
      description:
        'The cron to preview, under the rules of `type` when given. Its pattern is what every type accepts; ' +
        'without `type`, or with a type whose minimum interval is shorter, other crons such as `*/15 * * * *` ' +
        'are previewed too.',
      example: '30 2 * * *',
    },
  }),
  timezone: timezoneOrUtc.openapi({ param: { name: 'timezone', in: 'query', example: 'Europe/Berlin' } }),
  type: z
    .enum(jobTypeNames)
    .optional()
    .openapi({
      param: { name: 'type', in: 'query' },
      description: "Also apply this job type's rules (some types have a longer minimum interval).",
      example: 'sendEmail',
    }),
  count: z.coerce
    .number()
    .int()
    .min(1)
    .max(PREVIEW_MAX_COUNT)
    .default(5)
    .openapi({
      format: 'int32',
      param: { name: 'count', in: 'query' },
      description: `How many fires to list, 1-${PREVIEW_MAX_COUNT}.`,
      example: 5,
    }),
  from: z
    .string()
    .max(40)
    // Bounded so one request cannot make the service compute centuries of zone data. The year is
    // checked as written, in one pattern the spec publishes: an RFC 3339 date-time (real dates,
    // leap days included) in 1970-2199. Checking the instant instead let a schema-valid value
    // such as 2199-12-31T23:30:00-01:00 be refused (found by Schemathesis).
    .regex(PREVIEW_FROM, 'must be an RFC 3339 date-time with offset, between 1970 and 2199')
    .optional()
    .openapi({
      format: 'date-time',
      param: { name: 'from', in: 'query' },
      description:
        'List the fires strictly after this instant (default: now), 1970-2199, e.g. to see a coming DST change. ' +
        'Write the offset as `Z` or URL-encode the `+`.',
      example: '2026-03-28T00:00:00Z',
    }),
});

/** One named enum, so client generators make one type of it (not one per use). */
const DstNote = z.enum(DST_NOTES).openapi('DstNote', {
  description: 'A DST change that affected a fire: see `CronFire.dst`.',
  example: 'shifted',
});

export const CronFire = z
  .object({
    utc: date.openapi({ description: 'The fire as a UTC instant.', example: '2026-03-29T01:30:00.000Z' }),
    local: z.string().max(30).openapi({
      description: 'The same instant as local time in `timezone`, with its offset (ISO 8601).',
      example: '2026-03-29T03:30:00+02:00',
    }),
    // A union with null, not .nullable(): zod-to-openapi would fold the null into the named enum.
    dst: z.union([DstNote, z.null()]).openapi({
      description:
        'How a DST change affected this fire, for fixed-time crons: `shifted` - its local time does not exist that ' +
        'day (spring forward), so it fires once, that much later (02:30 becomes 03:30); `repeated-once` - its ' +
        'local time happens twice that day (fall back) and this first occurrence is its only fire. null ' +
        'otherwise, and always for interval crons, which follow real time.',
      example: 'shifted',
    }),
  })
  .openapi('CronFire');

export const CronPreview = z
  .object({
    cron: z.string().max(100).openapi({ example: '30 2 * * *' }),
    timezone: z.string().max(100).openapi({ example: 'Europe/Berlin' }),
    description: z.string().max(1000).nullable().openapi({
      description: 'The cron in words (cronstrue, English, 24-hour clock); null if it cannot describe it.',
      example: 'At 02:30',
    }),
    kind: z.enum(CRON_KINDS).openapi({
      description:
        'The DST rule the cron follows. `interval`: the hour field is `*`, so it fires in every hour and follows ' +
        'real elapsed time (nothing in a skipped hour, both passes of a repeated hour). `fixed-time`: it names ' +
        'hours of the local day; each named time fires once per day, shifted out of a skipped hour, at the first ' +
        'pass of a repeated one.',
      example: 'fixed-time',
    }),
    fires: z.array(CronFire).max(PREVIEW_MAX_COUNT),
  })
  .openapi('CronPreview', {
    example: {
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      description: 'At 02:30',
      kind: 'fixed-time',
      fires: [
        { utc: '2026-03-28T01:30:00.000Z', local: '2026-03-28T02:30:00+01:00', dst: null },
        { utc: '2026-03-29T01:30:00.000Z', local: '2026-03-29T03:30:00+02:00', dst: 'shifted' },
        { utc: '2026-03-30T00:30:00.000Z', local: '2026-03-30T02:30:00+02:00', dst: null },
      ],
    },
  });
