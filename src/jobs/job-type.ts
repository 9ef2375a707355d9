import type { Connection } from 'mongoose';
import type { z } from 'zod';
import type { Env } from '../env.js';
import type { Logger } from '../lib/logger.js';
import type { Models } from '../models/index.js';
import type { Run } from '../models/run.model.js';
import { DEFAULT_JOB_DEFAULTS, type JobDefaults } from './job-policies.js';

export type Role = 'user' | 'admin';

/** How the runs of a type are executed. Every type gets the defaults below unless it says otherwise. */
export interface RunPolicy {
  /** Attempts per run, the first included; 1 means no retry. */
  maxAttempts: number;
  /** Wait before the second attempt; doubled for each further one. */
  backoffMs: number;
  /** An attempt still going after this is cut off and counts as timed out. */
  timeoutMs: number;
  /**
   * How long a worker's claim on a run lasts without a heartbeat. A worker that dies mid-run
   * (kill -9) leaves its run `running`; after this long another worker marks it `interrupted`.
   * The runner sends heartbeats while a handler runs, so long handlers are not cut by it.
   */
  lockLifetimeMs: number;
  /** After this many failed scheduled runs in a row the job pauses itself; 0 never. */
  pauseAfterFailures: number;
}

export const DEFAULT_RUN_POLICY: RunPolicy = {
  maxAttempts: 3,
  backoffMs: 1_000,
  timeoutMs: 60_000,
  lockLifetimeMs: 2 * 60_000,
  pauseAfterFailures: 5,
};

/** Configuration variables by name; a type names those its code reads. */
export type SettingName = keyof Env;

/** The named variables of the configuration, and nothing else of it. */
export function pickSettings<K extends SettingName>(config: Pick<Env, K>, names: readonly K[] = []): Pick<Env, K> {
  return Object.fromEntries(names.map((name) => [name, config[name]])) as Pick<Env, K>;
}

/** What `checkPayload` is judged against. */
export interface PayloadCheckContext<R extends SettingName> {
  /** The configuration variables the type's `payloadRules` names. */
  rules: Pick<Env, R>;
  /** The verified email of whoever sets (or last set) the payload, when the token had one. */
  authorEmail: string | null;
}

/** Why a payload is refused: the field inside the payload, and a message for the client. */
export interface PayloadRefusal {
  path: string;
  message: string;
}

/** What a handler gets besides its payload. */
export interface JobContext<S extends SettingName> {
  runId: string;
  jobId: string;
  ownerId: string;
  /** The slot this run is for; a manual run's is the time it was requested. */
  scheduledFor: Date;
  trigger: Run['trigger'];
  /** 1 for the first attempt. */
  attempt: number;
  /** Aborted when the attempt times out or the worker shuts down; long handlers should honour it. */
  signal: AbortSignal;
  logger: Logger;
  conn: Connection;
  models: Models;
  /** The configuration variables the type's `settings` names. */
  settings: Pick<Env, S>;
  /** The verified email of whoever last set the payload (the job as read for this attempt). */
  payloadAuthorEmail: string | null;
}

/**
 * A whitelisted job type: data plus one idempotent function. Running a handler twice for the
 * same run id must not do the work twice where that can be avoided (see each type).
 */
export interface JobType<
  P extends z.ZodType = z.ZodType,
  S extends SettingName = SettingName,
  R extends SettingName = SettingName,
> {
  name: string;
  /** A short human name, for forms and lists. */
  label: string;
  summary: string;
  payload: P;
  /** A payload that validates; shown in the catalog and the reference. */
  example: z.input<P>;
  /**
   * The example as the catalog shows it to one caller, where `checkPayload` would refuse the
   * static one for some (a recipient the caller may not email): a payload this caller may save.
   */
  exampleFor?(ctx: PayloadCheckContext<R>): z.input<P>;
  /** Roles allowed to create jobs of this type. */
  roles: readonly Role[];
  /** The type's own minimum gap between fires; the service's CRON_MIN_INTERVAL_SECONDS applies when larger. */
  minIntervalSeconds?: number;
  /** Overrides of DEFAULT_RUN_POLICY; JOB_TYPE_POLICIES in the configuration overrides both. */
  policy?: Partial<RunPolicy>;
  /** Overrides of DEFAULT_JOB_DEFAULTS. */
  defaults?: Partial<JobDefaults>;
  /** The configuration variables the handler reads: it is given these, nothing else of the configuration. */
  settings?: readonly S[];
  /** The configuration variables `checkPayload` reads. */
  payloadRules?: readonly R[];
  /**
   * Rules on a valid payload that depend on the configuration and on who sets it (whom an email
   * may go to). Checked when the payload is set (403 naming the field) and by the handler again
   * before it acts, since the configuration may have changed meanwhile.
   */
  checkPayload?(payload: z.infer<P>, ctx: PayloadCheckContext<R>): PayloadRefusal | undefined;
  /** What the handler reports lands on the run as `result`. */
  handler(payload: z.infer<P>, ctx: JobContext<S>): Promise<Record<string, unknown>>;
}

/**
 * A failure that another attempt cannot fix (an invalid payload, an address the mail server
 * refuses for good): the run fails at once instead of being retried.
 */
export class PermanentError extends Error {}

/** A type that names no settings is given none. */
export const defineJobType = <P extends z.ZodType, S extends SettingName = never, R extends SettingName = never>(
  type: JobType<P, S, R>,
): JobType<P, S, R> => type;

/** A type's effective run policy: the defaults, the type's own choices, then the configuration's. */
export function runPolicyOf(
  type: Pick<JobType, 'name' | 'policy'>,
  config?: Pick<Env, 'JOB_TYPE_POLICIES'>,
): RunPolicy {
  return { ...DEFAULT_RUN_POLICY, ...type.policy, ...config?.JOB_TYPE_POLICIES[type.name] };
}

export function jobDefaultsOf(type: Pick<JobType, 'defaults'>): JobDefaults {
  return { ...DEFAULT_JOB_DEFAULTS, ...type.defaults };
}

export const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The shortest gap between fires a job of the type may have: the service's rule or the type's own,
 * whichever is larger.
 */
export function minIntervalOf(
  type: Pick<JobType, 'minIntervalSeconds'> | undefined,
  config: Pick<Env, 'CRON_MIN_INTERVAL_SECONDS'>,
): number {
  return Math.max(config.CRON_MIN_INTERVAL_SECONDS, type?.minIntervalSeconds ?? 0);
}
