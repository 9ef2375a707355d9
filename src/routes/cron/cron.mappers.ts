import type { z } from '@hono/zod-openapi';
import type { JobDoc } from '../../models/cron-job.model.js';
import type { Run as RunDoc } from '../../models/run.model.js';
import { nextFire } from '../../scheduler/cron.js';
import { type CronJob, type Run, TEXT_LIMITS } from './cron.schemas.js';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
/** Texts a handler or the configuration wrote, cut to the length the spec promises (TEXT_LIMITS). */
const clip = (value: string | null | undefined, max: number) =>
  value == null ? null : value.length > max ? `${value.slice(0, max - 1)}…` : value;

/**
 * The next fire to show: the stored one (the dispatcher keeps it), or, once that is past and not
 * yet fired, computed now, so a slot already gone is never shown. Computing it for every job of a
 * page cost 40 µs each (bench/validation.ts).
 */
function upcoming(job: JobDoc, now = Date.now()): string | null {
  if (!job.enabled) return null;
  if (job.nextRunAt && job.nextRunAt.getTime() > now) return job.nextRunAt.toISOString();
  return nextFire(job.cron, job.timezone).toISOString();
}

/** A stored job on the wire. */
export function toCronJob(job: JobDoc): z.infer<typeof CronJob> {
  return {
    id: String(job._id),
    name: job.name,
    type: job.type as z.infer<typeof CronJob>['type'],
    cron: job.cron,
    timezone: job.timezone,
    payload: job.payload as Record<string, unknown>,
    enabled: job.enabled,
    ownerId: job.ownerId,
    lastRunAt: iso(job.lastRunAt),
    nextRunAt: upcoming(job),
    status: job.status,
    overlap: job.overlap,
    misfirePolicy: job.misfirePolicy,
    pausedReason: clip(job.pausedReason, TEXT_LIMITS.reason),
    consecutiveFailures: job.consecutiveFailures,
    createdAt: job.createdAt.toISOString(),
    updatedAt: job.updatedAt.toISOString(),
  };
}

export function toRun(run: RunDoc & { _id: unknown }): z.infer<typeof Run> {
  return {
    id: String(run._id),
    jobId: String(run.jobId),
    scheduledFor: run.scheduledFor.toISOString(),
    trigger: run.trigger,
    status: run.status,
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
    durationMs: run.durationMs ?? null,
    error: clip(run.error, TEXT_LIMITS.reason),
    result: (run.result as Record<string, unknown> | null) ?? null,
    worker: clip(run.worker, TEXT_LIMITS.worker),
    attempts: run.attempts,
    createdAt: run.createdAt.toISOString(),
  };
}
