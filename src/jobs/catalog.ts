import { z } from 'zod';
import type { Env } from '../env.js';
import type { Caller } from '../lib/auth.js';
import type { MisfirePolicy, OverlapPolicy } from './job-policies.js';
import { type JobType, jobDefaultsOf, type Role, runPolicyOf } from './job-type.js';
import { jobTypes } from './registry.js';

export interface JobTypeDescription {
  name: string;
  label: string;
  description: string;
  /** JSON Schema (2020-12) of the payload as a client sends it, generated from the zod schema. */
  payloadSchema: Record<string, unknown>;
  example: Record<string, unknown>;
  roles: Role[];
  /** The closest two fires of a job of this type may be: the service's rule or the type's own, whichever is larger. */
  minIntervalSeconds: number;
  defaults: {
    retry: { maxAttempts: number; backoffMs: number };
    timeoutMs: number;
    pauseAfterFailures: number;
    overlap: OverlapPolicy;
    misfirePolicy: MisfirePolicy;
  };
}

export type CatalogConfig = Pick<Env, 'CRON_MIN_INTERVAL_SECONDS' | 'JOB_TYPE_POLICIES'>;

/**
 * The input side of the schema: a field with a default (sendEmail's `params`) is optional for the
 * client. Checks zod cannot express in JSON Schema (a template's required params) stay server-side;
 * the API reports them as field errors like any other.
 */
const payloadSchemaOf = (type: JobType) =>
  z.toJSONSchema(type.payload, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;

/** One type as the mobile app needs it to build a form and explain the job's behaviour. */
export function describeJobType(type: JobType, config: CatalogConfig): JobTypeDescription {
  const policy = runPolicyOf(type, config);
  const defaults = jobDefaultsOf(type);
  return {
    name: type.name,
    label: type.label,
    description: type.summary,
    payloadSchema: payloadSchemaOf(type),
    example: type.example as Record<string, unknown>,
    roles: [...type.roles],
    minIntervalSeconds: Math.max(config.CRON_MIN_INTERVAL_SECONDS, type.minIntervalSeconds ?? 0),
    defaults: {
      retry: { maxAttempts: policy.maxAttempts, backoffMs: policy.backoffMs },
      timeoutMs: policy.timeoutMs,
      pauseAfterFailures: policy.pauseAfterFailures,
      overlap: defaults.overlap,
      misfirePolicy: defaults.misfirePolicy,
    },
  };
}

/** The types the caller may create jobs of, in registry order. */
export function jobTypeCatalog(caller: Caller, config: CatalogConfig): JobTypeDescription[] {
  const role: Role = caller.isAdmin ? 'admin' : 'user';
  return jobTypes
    .filter((t) => (t.roles as readonly Role[]).includes(role))
    .map((t) => describeJobType(t as JobType, config));
}
