import { hostname } from 'node:os';
import { z } from 'zod';
import { LOCAL_BACKENDS } from './db/quirks.js';

/** The development secret, documented in docs/configuration.md so the walk-through works out of the box. */
export const DEVELOPMENT_JWT_SECRET = 'dev-only-secret-change-me-0123456789abcdef';

const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Per-type overrides of the run policy, e.g. {"sendEmail":{"timeoutMs":30000,"maxAttempts":5}}. */
const jobTypePolicies = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON' });
      return z.NEVER;
    }
  })
  .pipe(
    z.record(
      z.string().regex(/^\w+$/),
      z.strictObject({
        maxAttempts: z.int().min(1).max(20).optional(),
        backoffMs: z.int().min(0).max(3_600_000).optional(),
        timeoutMs: z.int().min(10).max(86_400_000).optional(),
        lockLifetimeMs: z.int().min(500).max(86_400_000).optional(),
        pauseAfterFailures: z.int().min(0).max(1000).optional(),
      }),
    ),
  );

const schema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    HOST: z.string().min(1).default('127.0.0.1'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

    MONGODB_URI: z
      .string()
      .regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb:// or mongodb+srv://')
      .optional(),
    /** How long a database call waits for a reachable server before failing (the API then answers 503). */
    MONGODB_SERVER_SELECTION_TIMEOUT_MS: z.coerce.number().int().min(100).default(5000),
    /** How long a database reply may take, for a database that stops answering. */
    MONGODB_SOCKET_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
    /** Storage of the local database started when MONGODB_URI is unset (docs/database.md). */
    LOCAL_DB: z.enum(LOCAL_BACKENDS).default('postgresql'),
    LOCAL_DB_DIR: z.string().min(1).default('.local/db'),
    /** The port `npm run db` serves the local database on, so the MONGODB_URI it prints stays the same. */
    LOCAL_DB_PORT: z.coerce.number().int().min(1).max(65535).default(27018),

    JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    /** RS256/ES256 tokens are verified against this key set (keys picked by `kid`). */
    JWKS_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    /** Checked when set (iss / aud); both required with JWKS_URL, where one identity provider serves many apps. */
    JWT_ISSUER: z.string().min(1).optional(),
    JWT_AUDIENCE: z.string().min(1).optional(),
    /** Leeway for exp / nbf, for clocks that disagree a little. */
    JWT_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(300).default(30),
    /** After a fetch, how long a token with an unknown `kid` waits before the key set is fetched again. */
    JWKS_REFETCH_COOLDOWN_MS: z.coerce.number().int().min(0).default(30_000),

    /** Browser origins allowed by CORS, comma-separated; empty: no CORS headers (native apps need none). */
    CORS_ORIGINS: z
      .string()
      .regex(
        /^\s*https?:\/\/[^/\s,]+(\s*,\s*https?:\/\/[^/\s,]+)*\s*$/,
        'must be origins like https://app.example.com, comma-separated',
      )
      .transform((v) => v.split(',').map((o) => o.trim()))
      .optional()
      .transform((v) => v ?? []),

    CRON_ALLOW_SECONDS: flag.default(false),
    CRON_MIN_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(60),

    SMTP_URL: z
      .string()
      .regex(/^smtps?:\/\//, 'must start with smtp:// or smtps://')
      .optional(),
    MAIL_FROM: z.string().min(3).default('Cron Jobs <no-reply@localhost>'),
    OUTBOX_DIR: z.string().min(1).default('.local/outbox'),
    SESSIONS_COLLECTION: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_.]*$/)
      .default('sessions'),

    AGENDA_PROCESS_EVERY_MS: z.coerce.number().int().min(100).default(5000),
    /** How often a worker re-checks that Agenda matches cron_jobs; 0 turns it off. */
    RECONCILE_INTERVAL_MS: z.coerce.number().int().min(0).default(300_000),
    /** A slot fired within this of its time runs (late, if late); an older one is missed (misfire policy). */
    MISFIRE_GRACE_MS: z.coerce.number().int().min(100).default(30_000),
    /**
     * Firing partitions: each is a lease one worker holds, spread over the live workers
     * (docs/scheduling.md#partitions). More than the workers you expect, so they spread evenly.
     */
    SCHEDULER_PARTITIONS: z.coerce.number().int().min(1).max(1024).default(16),
    /**
     * How long a partition's lease lasts unrenewed (renewed every fifth of it): after a worker dies,
     * its partitions wait about this long, plus a fifth, before another worker fires them.
     */
    SCHEDULER_LEASE_MS: z.coerce.number().int().min(500).max(600_000).default(5000),
    /** Runs a worker executes at once from the partitions it fires (manual runs: 10 per type through Agenda). */
    RUN_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(50),
    JOB_TYPE_POLICIES: jobTypePolicies.default({}),
    /**
     * History kept (docs/scheduling.md#history-and-retention): finished runs per job, succeeded and
     * not (failed, timedOut, interrupted, missed, skipped, cancelled) counted apart. At least 1: a
     * job's latest run record is what makes a slot fire once (its unique key)...
     */
    RUNS_KEPT_SUCCEEDED_PER_JOB: z.coerce.number().int().min(1).default(100),
    RUNS_KEPT_FAILED_PER_JOB: z.coerce.number().int().min(1).default(100),
    /** ...and up to an age in days, any job's, deleted jobs' included; 0 keeps them whatever their age. */
    RUNS_KEPT_DAYS: z.coerce.number().int().min(0).default(30),
    /** Audit entries and generateReport's reports are kept this many days; 0 keeps them. */
    AUDIT_KEPT_DAYS: z.coerce.number().int().min(0).default(365),
    REPORTS_KEPT_DAYS: z.coerce.number().int().min(0).default(90),
    /** How often a worker deletes the history past those limits (bounded passes). */
    HISTORY_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(600_000),

    /** Bearer token /metrics requires; unset: /metrics is open in development and test, off in production. */
    METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    /** A worker's own /metrics and /healthz listener (one port per worker); unset: none. */
    WORKER_METRICS_PORT: z.coerce.number().int().min(1).max(65535).optional(),
    WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(20000),

    /** Abuse limits (OWASP API4): requests per window on /api/cron, counted in the database; 0 turns one off. */
    RATE_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
    RATE_LIMIT_PER_USER: z.coerce.number().int().min(0).default(120),
    RATE_LIMIT_PER_IP: z.coerce.number().int().min(0).default(300),
    RATE_LIMIT_RUN_NOW_PER_USER: z.coerce.number().int().min(0).default(10),
    /** How often an API instance publishes its rate-limit counts and reads the others' (when it counted any). */
    RATE_LIMIT_SYNC_MS: z.coerce.number().int().min(10).max(60_000).default(1000),
    /**
     * The share of a quota an instance may admit for one key between two looks at the shared count:
     * across I instances a key gets at most quota + I x floor(quota x share) per window; 0 is exact.
     */
    RATE_LIMIT_LOCAL_SHARE: z.coerce.number().min(0).max(1).default(0.1),
    /**
     * Proxies in front of the API whose X-Forwarded-For entry is trusted for the per-IP limit; 0 uses
     * the socket address.
     */
    TRUST_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
    MAX_JOBS_PER_OWNER: z.coerce.number().int().min(1).default(50),
    /** Idempotency-Key records are kept this long (the draft asks for at least a day). */
    IDEMPOTENCY_KEY_TTL_HOURS: z.coerce
      .number()
      .int()
      .min(24)
      .max(24 * 30)
      .default(24),
    /** sendEmail recipients: addresses at these domains (comma-separated, exact match)... */
    EMAIL_ALLOWED_DOMAINS: z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((d) => d.trim().toLowerCase())
          .filter(Boolean),
      )
      .pipe(
        z.array(
          z
            .string()
            .regex(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/, 'must be a comma-separated list of domains such as example.com'),
        ),
      )
      .default([]),
    /** ...and the caller's own address, from the token's `email` claim. */
    EMAIL_ALLOW_OWN_ADDRESS: flag.default(true),
    WORKER_NAME: z.string().min(1).default(`${hostname()}-${process.pid}`),
  })
  .superRefine(
    (env, ctx) => {
      if (env.NODE_ENV === 'production' && !env.JWT_SECRET && !env.JWKS_URL) {
        ctx.addIssue({
          code: 'custom',
          path: ['JWT_SECRET'],
          message: 'is required when NODE_ENV=production (or set JWKS_URL)',
        });
      }
      if (env.JWKS_URL) {
        for (const name of ['JWT_ISSUER', 'JWT_AUDIENCE'] as const) {
          if (!env[name]) ctx.addIssue({ code: 'custom', path: [name], message: 'is required with JWKS_URL' });
        }
      }
    },
    // Run even when other variables failed, so one message lists every problem.
    { when: () => true },
  )
  // HS256 is on with an explicit secret, or with the development one while no JWKS_URL is set:
  // a service given a key set never accepts tokens signed with the published development secret.
  .transform((env) => ({ ...env, JWT_SECRET: env.JWT_SECRET ?? (env.JWKS_URL ? undefined : DEVELOPMENT_JWT_SECRET) }));

export type Env = z.infer<typeof schema>;

/** Parses configuration from variables; throws one readable message listing every bad one. */
export function parseEnv(vars: Record<string, string | undefined>): Env {
  // An empty or blank variable means "unset", as in most shells' `VAR= cmd`.
  const present = Object.fromEntries(Object.entries(vars).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const result = schema.safeParse(present);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

let cached: Env | undefined;

/** The process configuration, parsed once. The only reader of process.env. */
export function env(): Env {
  cached ??= parseEnv(process.env);
  return cached;
}

/** The configuration, or exit 1 with a message naming every bad variable (for entry points). */
export function envOrExit(): Env {
  try {
    return env();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(1);
  }
}
