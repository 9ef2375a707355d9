import type { Connection } from 'mongoose';

/**
 * A valid POST /jobs body, unique by `k` (names are unique per owner). Every field is given, so
 * a server that applies no schema defaults stores the same job as one that does.
 */
export const jobInput = (k: number) => ({
  name: `bench post ${k}`,
  type: 'sendEmail',
  cron: '0 8 * * *',
  timezone: 'UTC',
  payload: { to: `post${k}@example.com`, subject: 'Digest', template: 'digest', params: { count: k } },
  enabled: true,
  overlap: 'forbid',
  misfirePolicy: 'runOnce',
});

/**
 * Deletes the jobs of the owners whose id starts with `prefix`, and their Agenda jobs: what a
 * benchmark's POSTs stored, so that every measurement sees the seeded count.
 */
export async function removeJobsOf(conn: Connection, prefix: string): Promise<void> {
  const theirs = { ownerId: { $regex: `^${prefix}` } };
  const ids = await conn
    .collection('cron_jobs')
    .find(theirs, { projection: { _id: 1 } })
    .toArray();
  if (ids.length === 0) return;
  await conn.collection('cron_jobs').deleteMany(theirs);
  await conn.collection('agendaJobs').deleteMany({ 'data.jobId': { $in: ids.map((d) => String(d._id)) } });
}
