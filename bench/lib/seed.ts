import { ObjectId } from 'mongodb';
import type { Connection } from 'mongoose';
import { jobDefaultsOf } from '../../src/jobs/job-type.js';
import { sendEmail } from '../../src/jobs/types/send-email.js';
import { bucketOf } from '../../src/scheduler/buckets.js';
import { nextFire } from '../../src/scheduler/cron.js';

export interface SeedOptions {
  /** The cron of job i; e.g. `() => '0 * * * * *'` puts every job on the same second. */
  cron: (i: number) => string;
  timezone?: (i: number) => string;
  /** Jobs are spread over this many owners (the API caps each owner at 50 by default). */
  owners: number;
  /** Recipients are at this domain; give the worker EMAIL_ALLOWED_DOMAINS to match. */
  emailDomain?: string;
  /** Store each job's next fire, as the API does (default true); false leaves it to reconcile(). */
  schedule?: boolean;
  /** Owner ids are `${ownerPrefix}${k}`. */
  ownerPrefix?: string;
}

export const ownerOf = (i: number, owners: number, prefix = 'bench-user-') => `${prefix}${i % owners}`;

/**
 * Stores `n` enabled sendEmail jobs as the API would have created them, in bulk (creating 10 000
 * through the API would take longer than the benchmark itself). The suites check that
 * `reconcile()` finds nothing to change afterwards, which fails should the document drift.
 */
export async function seedJobs(conn: Connection, n: number, options: SeedOptions): Promise<string[]> {
  const domain = options.emailDomain ?? 'example.com';
  const now = new Date();
  const ids: string[] = [];
  for (let start = 0; start < n; start += 1000) {
    const jobs = [];
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
        nextRunAt: options.schedule === false ? null : next,
        status: 'idle',
        ...jobDefaultsOf(sendEmail),
        pausedReason: null,
        consecutiveFailures: 0,
        slotsFrom: now,
        lastSlotAt: null,
        payloadAuthorEmail: null,
        // As the model sets it on create: the job's firing partition.
        bucket: bucketOf(_id),
        createdAt: now,
        updatedAt: now,
      });
    }
    await conn.collection('cron_jobs').insertMany(jobs);
  }
  return ids;
}
