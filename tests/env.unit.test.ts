import { describe, expect, it } from 'vitest';
import { DEVELOPMENT_JWT_SECRET, parseEnv } from '../src/env.js';

// parseEnv is pure: every case passes its own variables, never process.env.

const GOOD_SECRET = 'a-production-secret-of-32-chars!';

/** The message parseEnv throws for `vars`; fails the test when it does not throw. */
function errorOf(vars: Record<string, string | undefined>): string {
  try {
    parseEnv(vars);
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return (error as Error).message;
  }
  throw new Error(`parseEnv accepted ${JSON.stringify(vars)}`);
}

describe('parseEnv: defaults', () => {
  it('fills every default from an empty environment', () => {
    // The whole object, so the table in docs/configuration.md is pinned here.
    expect(parseEnv({})).toEqual({
      NODE_ENV: 'development',
      PORT: 3000,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      MONGODB_SERVER_SELECTION_TIMEOUT_MS: 5000,
      MONGODB_SOCKET_TIMEOUT_MS: 10_000,
      LOCAL_DB: 'postgresql',
      LOCAL_DB_DIR: '.local/db',
      LOCAL_DB_PORT: 27018,
      JWT_SECRET: DEVELOPMENT_JWT_SECRET,
      JWT_CLOCK_TOLERANCE_SECONDS: 30,
      JWKS_REFETCH_COOLDOWN_MS: 30_000,
      CORS_ORIGINS: [],
      CRON_ALLOW_SECONDS: false,
      CRON_MIN_INTERVAL_SECONDS: 60,
      MAIL_FROM: 'Cron Jobs <no-reply@localhost>',
      OUTBOX_DIR: '.local/outbox',
      SESSIONS_COLLECTION: 'sessions',
      AGENDA_PROCESS_EVERY_MS: 5000,
      RECONCILE_INTERVAL_MS: 300_000,
      MISFIRE_GRACE_MS: 30_000,
      SCHEDULER_PARTITIONS: 16,
      SCHEDULER_LEASE_MS: 5000,
      RUN_CONCURRENCY: 50,
      JOB_TYPE_POLICIES: {},
      RUNS_KEPT_SUCCEEDED_PER_JOB: 100,
      RUNS_KEPT_FAILED_PER_JOB: 100,
      RUNS_KEPT_DAYS: 30,
      AUDIT_KEPT_DAYS: 365,
      REPORTS_KEPT_DAYS: 90,
      HISTORY_SWEEP_INTERVAL_MS: 600_000,
      WORKER_METRICS_HOST: '127.0.0.1',
      SHUTDOWN_TIMEOUT_MS: 20_000,
      RATE_LIMIT_WINDOW_SECONDS: 60,
      RATE_LIMIT_PER_USER: 120,
      RATE_LIMIT_PER_IP: 300,
      RATE_LIMIT_RUN_NOW_PER_USER: 10,
      RATE_LIMIT_SYNC_MS: 1000,
      RATE_LIMIT_LOCAL_SHARE: 0.1,
      TRUST_PROXY_HOPS: 0,
      MAX_JOBS_PER_OWNER: 50,
      IDEMPOTENCY_KEY_TTL_HOURS: 24,
      EMAIL_ALLOWED_DOMAINS: [],
      EMAIL_ALLOW_OWN_ADDRESS: true,
      WORKER_NAME: expect.stringMatching(/-\d+$/),
    });
  });

  it('uses the development JWT secret in development and test, and it is long enough to sign with', () => {
    expect(parseEnv({ NODE_ENV: 'development' }).JWT_SECRET).toBe(DEVELOPMENT_JWT_SECRET);
    expect(parseEnv({ NODE_ENV: 'test' }).JWT_SECRET).toBe(DEVELOPMENT_JWT_SECRET);
    expect(DEVELOPMENT_JWT_SECRET.length).toBeGreaterThanOrEqual(32);
  });

  it('reads per-type run policy overrides as JSON and refuses bad ones', () => {
    expect(
      parseEnv({ JOB_TYPE_POLICIES: '{"sendEmail":{"timeoutMs":2000,"maxAttempts":1}}' }).JOB_TYPE_POLICIES,
    ).toEqual({
      sendEmail: { timeoutMs: 2000, maxAttempts: 1 },
    });
    expect(() => parseEnv({ JOB_TYPE_POLICIES: '{nope' })).toThrow(/JOB_TYPE_POLICIES: must be JSON/);
    expect(() => parseEnv({ JOB_TYPE_POLICIES: '{"sendEmail":{"retries":2}}' })).toThrow(/JOB_TYPE_POLICIES/);
    expect(() => parseEnv({ JOB_TYPE_POLICIES: '{"sendEmail":{"maxAttempts":0}}' })).toThrow(
      /JOB_TYPE_POLICIES\.sendEmail\.maxAttempts/,
    );
  });

  it('opens no worker listener by default, takes a port for one, and refuses a bad LOCAL_DB_PORT', () => {
    expect(parseEnv({}).WORKER_METRICS_PORT).toBeUndefined();
    expect(parseEnv({ WORKER_METRICS_PORT: '9465' }).WORKER_METRICS_PORT).toBe(9465);
    expect(() => parseEnv({ WORKER_METRICS_PORT: '70000' })).toThrow(/WORKER_METRICS_PORT: /);
    expect(() => parseEnv({ WORKER_METRICS_PORT: '0' })).toThrow(/WORKER_METRICS_PORT: /);
    expect(parseEnv({ LOCAL_DB_PORT: '27555' }).LOCAL_DB_PORT).toBe(27555);
    expect(() => parseEnv({ LOCAL_DB_PORT: 'mongo' })).toThrow(/LOCAL_DB_PORT: /);
  });

  it('has no metrics token by default, and refuses a short one', () => {
    expect(parseEnv({}).METRICS_TOKEN).toBeUndefined();
    expect(parseEnv({ METRICS_TOKEN: 'a-long-enough-token' }).METRICS_TOKEN).toBe('a-long-enough-token');
    expect(() => parseEnv({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN: must be at least 16 characters/);
  });

  it('reads the abuse limits and the email allowlist, and refuses bad ones', () => {
    expect(parseEnv({ EMAIL_ALLOWED_DOMAINS: ' Example.com, corp.example.org ,' }).EMAIL_ALLOWED_DOMAINS).toEqual([
      'example.com',
      'corp.example.org',
    ]);
    expect(parseEnv({ RATE_LIMIT_PER_USER: '0', MAX_JOBS_PER_OWNER: '5' })).toMatchObject({
      RATE_LIMIT_PER_USER: 0,
      MAX_JOBS_PER_OWNER: 5,
    });
    expect(() => parseEnv({ EMAIL_ALLOWED_DOMAINS: 'example.com,not a domain' })).toThrow(/EMAIL_ALLOWED_DOMAINS/);
    expect(() => parseEnv({ IDEMPOTENCY_KEY_TTL_HOURS: '1' })).toThrow(/IDEMPOTENCY_KEY_TTL_HOURS/);
    expect(() => parseEnv({ MAX_JOBS_PER_OWNER: '0' })).toThrow(/MAX_JOBS_PER_OWNER/);
    expect(() => parseEnv({ RATE_LIMIT_PER_IP: '-1' })).toThrow(/RATE_LIMIT_PER_IP/);
  });

  it('reads the history limits, keeps at least one run of each kind, and takes 0 days as no age limit', () => {
    const env = parseEnv({ RUNS_KEPT_SUCCEEDED_PER_JOB: '5', RUNS_KEPT_DAYS: '0', AUDIT_KEPT_DAYS: '0' });
    expect(env).toMatchObject({ RUNS_KEPT_SUCCEEDED_PER_JOB: 5, RUNS_KEPT_DAYS: 0, AUDIT_KEPT_DAYS: 0 });
    expect(errorOf({ RUNS_KEPT_FAILED_PER_JOB: '0' })).toMatch(/RUNS_KEPT_FAILED_PER_JOB/);
    expect(errorOf({ REPORTS_KEPT_DAYS: '-1' })).toMatch(/REPORTS_KEPT_DAYS/);
    expect(errorOf({ HISTORY_SWEEP_INTERVAL_MS: '10' })).toMatch(/HISTORY_SWEEP_INTERVAL_MS/);
  });

  it('ignores variables it does not know', () => {
    expect(parseEnv({ PATH: '/usr/bin', HOME: '/root' })).not.toHaveProperty('PATH');
  });

  it('reads the values it is given', () => {
    const env = parseEnv({
      PORT: '8080',
      HOST: '0.0.0.0',
      LOG_LEVEL: 'debug',
      CRON_MIN_INTERVAL_SECONDS: '300',
      MONGODB_URI: 'mongodb+srv://db.example.com/app',
    });
    expect(env).toMatchObject({
      PORT: 8080,
      HOST: '0.0.0.0',
      LOG_LEVEL: 'debug',
      CRON_MIN_INTERVAL_SECONDS: 300,
      MONGODB_URI: 'mongodb+srv://db.example.com/app',
    });
  });
});

describe('parseEnv: JWT_SECRET in production', () => {
  it('NODE_ENV=production without JWT_SECRET throws naming JWT_SECRET', () => {
    expect(errorOf({ NODE_ENV: 'production' })).toMatch(/JWT_SECRET: is required when NODE_ENV=production/);
  });

  it('NODE_ENV=production with an empty JWT_SECRET throws the same way (empty is unset)', () => {
    expect(errorOf({ NODE_ENV: 'production', JWT_SECRET: '' })).toMatch(/JWT_SECRET: is required/);
  });

  it('NODE_ENV=production with a 32-character secret passes and uses it', () => {
    expect(GOOD_SECRET).toHaveLength(32);
    expect(parseEnv({ NODE_ENV: 'production', JWT_SECRET: GOOD_SECRET }).JWT_SECRET).toBe(GOOD_SECRET);
  });

  it('a secret shorter than 32 characters throws naming JWT_SECRET, in production and outside it', () => {
    expect(errorOf({ NODE_ENV: 'production', JWT_SECRET: GOOD_SECRET.slice(1) })).toMatch(
      /JWT_SECRET: must be at least 32 characters/,
    );
    expect(errorOf({ JWT_SECRET: 'short' })).toMatch(/JWT_SECRET: must be at least 32 characters/);
  });
});

describe('parseEnv: bad values name the variable', () => {
  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['CRON_ALLOW_SECONDS', 'maybe'],
    ['CRON_ALLOW_SECONDS', 'TRUE'],
    ['CRON_MIN_INTERVAL_SECONDS', '0'],
    ['MONGODB_URI', 'http://x'],
    ['LOG_LEVEL', 'loud'],
    ['NODE_ENV', 'staging'],
    ['SMTP_URL', 'http://mail'],
  ])('%s=%s throws naming %s', (name, value) => {
    const message = errorOf({ [name]: value });
    expect(message).toMatch(/^Invalid configuration:\n/);
    expect(message).toContain(`  ${name}: `);
  });

  it('several bad variables at once are all listed, one per line', () => {
    const message = errorOf({ PORT: 'abc', CRON_ALLOW_SECONDS: 'maybe', MONGODB_URI: 'http://x', LOG_LEVEL: 'loud' });
    const lines = message.split('\n').slice(1);
    expect(lines).toHaveLength(4);
    for (const name of ['PORT', 'CRON_ALLOW_SECONDS', 'MONGODB_URI', 'LOG_LEVEL'])
      expect(message).toContain(`  ${name}: `);
  });

  it('a missing production JWT_SECRET is listed together with the other bad variables', () => {
    // Regression: the superRefine that requires JWT_SECRET in production is skipped when any
    // field already failed, so the first deploy error lists only PORT and the JWT_SECRET error
    // appears only after PORT is fixed, against parseEnv's "listing every bad one".
    const message = errorOf({ NODE_ENV: 'production', PORT: 'abc' });
    expect(message).toContain('  PORT: ');
    expect(message).toContain('  JWT_SECRET: is required when NODE_ENV=production');
  });
});

describe('parseEnv: unset and flags', () => {
  it('an empty string counts as unset: PORT="" gives 3000', () => {
    expect(parseEnv({ PORT: '' }).PORT).toBe(3000);
    expect(parseEnv({ PORT: undefined }).PORT).toBe(3000);
    expect(parseEnv({ CRON_ALLOW_SECONDS: '', LOG_LEVEL: '' })).toMatchObject({
      CRON_ALLOW_SECONDS: false,
      LOG_LEVEL: 'info',
    });
  });

  it('a whitespace-only PORT is not read as port 0 (it counts as unset: 3000)', () => {
    // Regression: only '' is dropped as unset; z.coerce.number() turns ' ' into 0, so
    // `PORT=' '` silently listens on a random port. Same for every other coerced number.
    expect(parseEnv({ PORT: ' ' }).PORT).toBe(3000);
  });

  it.each([
    ['true', true],
    ['1', true],
    ['false', false],
    ['0', false],
  ])('CRON_ALLOW_SECONDS=%s -> %s', (value, expected) => {
    expect(parseEnv({ CRON_ALLOW_SECONDS: value }).CRON_ALLOW_SECONDS).toBe(expected);
  });
});

describe('parseEnv: token verification and CORS', () => {
  const jwks = {
    JWKS_URL: 'https://id.example.com/.well-known/jwks.json',
    JWT_ISSUER: 'https://id.example.com/',
    JWT_AUDIENCE: 'cron-jobs',
  };

  it('JWKS_URL without JWT_SECRET turns the development secret off, in any NODE_ENV', () => {
    expect(parseEnv(jwks).JWT_SECRET).toBeUndefined();
    expect(parseEnv({ ...jwks, NODE_ENV: 'production' })).toMatchObject({
      JWT_SECRET: undefined,
      JWKS_URL: jwks.JWKS_URL,
    });
  });

  it('JWKS_URL with an explicit JWT_SECRET keeps both', () => {
    expect(parseEnv({ ...jwks, JWT_SECRET: GOOD_SECRET }).JWT_SECRET).toBe(GOOD_SECRET);
  });

  it('JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE, both listed when missing', () => {
    const message = errorOf({ JWKS_URL: jwks.JWKS_URL });
    expect(message).toContain('  JWT_ISSUER: is required with JWKS_URL');
    expect(message).toContain('  JWT_AUDIENCE: is required with JWKS_URL');
  });

  it.each(['ftp://id.example.com/jwks', 'not a url'])('JWKS_URL=%s throws naming JWKS_URL', (value) => {
    expect(errorOf({ ...jwks, JWKS_URL: value })).toContain('  JWKS_URL: ');
  });

  it('reads the clock tolerance and refuses more than 300 seconds', () => {
    expect(parseEnv({ JWT_CLOCK_TOLERANCE_SECONDS: '5' }).JWT_CLOCK_TOLERANCE_SECONDS).toBe(5);
    expect(errorOf({ JWT_CLOCK_TOLERANCE_SECONDS: '301' })).toContain('  JWT_CLOCK_TOLERANCE_SECONDS: ');
  });

  it('CORS_ORIGINS is a comma-separated list of origins', () => {
    expect(parseEnv({ CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' }).CORS_ORIGINS).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
    expect(errorOf({ CORS_ORIGINS: 'https://app.example.com/path' })).toContain('  CORS_ORIGINS: ');
    expect(errorOf({ CORS_ORIGINS: '*' })).toContain('  CORS_ORIGINS: ');
  });
});
