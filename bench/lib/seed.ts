import { ObjectId } from 'mongodb';
import type { Connection } from 'mongoose';
import { AGENDA_COLLECTION } from '../../src/scheduler/agenda.js';
import { FIRE_JOB } from '../../src/scheduler/agenda-jobs.js';
import { nextFire } from '../../src/scheduler/cron.js';

export interface SeedOptions {
  /** The cron of job i; e.g. `() => '0 * * * * *'` puts every job on the same second. */
  cron: (i: number) => string;
  timezone?: (i: number) => string;
  /** Jobs are spread over this many owners (the API caps each owner at 50 by default). */
  owners: number;
  /** Recipients are at this domain; give the worker EMAIL_ALLOWED_DOMAINS to match. */
  emailDomain?: string;
  /** Also insert each job's Agenda fire job, as the API would (default true). */
  schedule?: boolean;
  /** Owner ids are `${ownerPrefix}${k}`. */
  ownerPrefix?: string;
}

export const ownerOf = (i: number, owners: number, prefix = 'bench-user-') => `${prefix}${i % owners}`;

/**
 * Stores `n` enabled sendEmail jobs as the API would have created them, in bulk (creating 10 000
 * through the API would take longer than the benchmark itself). The fire jobs are written in the
 * shape `ensureScheduled` saves them; the suites check that `reconcile()` finds nothing to
 * change afterwards, which fails should that shape drift.
 */
export async function seedJobs(conn: Connection, n: number, options: SeedOptions): Promise<string[]> {
  const domain = options.emailDomain ?? 'example.com';
  const now = new Date();
  const ids: string[] = [];
  for (let start = 0; start < n; start += 1000) {
    const jobs = [];
    const fires = [];
    for (let i = start; i < Math.min(n, start + 1000); i++) {
      const _id = new ObjectId();
      const cron = options.cron(i);
      const timezone = options.timezone?.(i) ?? 'UTC';
      const next = nextFire(cron, timezone);
      ids.push(String(_id));
      jobs.push({
        _id,
        name: `bench job ${i}`,
        type: 'sendEmail',
        cron,
        timezone,
        payload: { to: `user${i}@${domain}`, subject: `Digest ${i}`, template: 'digest', params: { count: i } },
        enabled: true,
        ownerId: ownerOf(i, options.owners, options.ownerPrefix),
        lastRunAt: null,
        nextRunAt: next,
        status: 'idle',
        overlap: 'forbid',
        misfirePolicy: 'runOnce',
        pausedReason: null,
        consecutiveFailures: 0,
        slotsFrom: now,
        lastSlotAt: null,
        payloadAuthorEmail: null,
        createdAt: now,
        updatedAt: now,
      });
      fires.push({ data: { jobId: String(_id) }, name: FIRE_JOB, repeatInterval: cron, repeatTimezone: timezone, lastModifiedBy: 'bench-seed', nextRunAt: next, priority: 0, type: 'normal' });
    }
    await conn.collection('cron_jobs').insertMany(jobs);
    if (options.schedule !== false) await conn.collection(AGENDA_COLLECTION).insertMany(fires);
  }
  return ids;
}
