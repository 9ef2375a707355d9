/**
 * forbid: a slot that comes while the job's previous run is still going is recorded as skipped.
 * allow: it runs alongside.
 */
export const OVERLAP_POLICIES = ['forbid', 'allow'] as const;
/** runOnce: one catch-up run makes up for the slots no worker fired in time. skip: none does. */
export const MISFIRE_POLICIES = ['runOnce', 'skip'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];
export type MisfirePolicy = (typeof MISFIRE_POLICIES)[number];

/** What a job gets when its owner does not choose. */
export interface JobDefaults {
  overlap: OverlapPolicy;
  misfirePolicy: MisfirePolicy;
}

/** A job's policies unless its type or its owner chooses others; the stored document's defaults too. */
export const DEFAULT_JOB_DEFAULTS: JobDefaults = { overlap: 'forbid', misfirePolicy: 'runOnce' };
