import { z } from 'zod';
import type { Env } from '../env.js';
import type { Caller } from '../lib/auth.js';
import { type JobType, jobDefaultsOf, minIntervalOf, pickSettings, type Role, runPolicyOf } from './job-type.js';
import { jobTypes } from './registry.js';

export type CatalogConfig = Pick<
  Env,
  'CRON_MIN_INTERVAL_SECONDS' | 'JOB_TYPE_POLICIES' | 'EMAIL_ALLOWED_DOMAINS' | 'EMAIL_ALLOW_OWN_ADDRESS'
>;

/**
 * JSON Schema (2020-12) of the payload as a client sends it: a field with a default (sendEmail's
 * `params`) is optional for the client. Checks zod cannot express in JSON Schema (a template's
 * required params) stay server-side; the API reports them as field errors like any other.
 */
const payloadSchemaOf = (type: JobType) =>
  z.toJSONSchema(type.payload, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;

/** One type as the mobile app needs it to build a form and explain the job's behaviour. */
export function describeJobType(type: JobType, config: CatalogConfig, caller?: Caller) {
  const policy = runPolicyOf(type, config);
  return {
    name: type.name,
    label: type.label,
    description: type.summary,
    payloadSchema: payloadSchemaOf(type),
    // What this caller may save as it is (a sendEmail recipient they may email), to prefill a form.
    example: (caller && type.exampleFor
      ? type.exampleFor({
          rules: pickSettings(config as Env, type.payloadRules),
          authorEmail: caller.email ?? null,
        })
      : type.example) as Record<string, unknown>,
    roles: [...type.roles],
    minIntervalSeconds: minIntervalOf(type, config),
    defaults: {
      retry: { maxAttempts: policy.maxAttempts, backoffMs: policy.backoffMs },
      timeoutMs: policy.timeoutMs,
      pauseAfterFailures: policy.pauseAfterFailures,
      ...jobDefaultsOf(type),
    },
  };
}

/** The types the caller may create jobs of, in registry order. */
export function jobTypeCatalog(caller: Caller, config: CatalogConfig) {
  const role: Role = caller.isAdmin ? 'admin' : 'user';
  return jobTypes.filter((t) => t.roles.includes(role)).map((t) => describeJobType(t, config, caller));
}
