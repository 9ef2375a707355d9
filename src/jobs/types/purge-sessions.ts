import { z } from 'zod';
import { DAY_MS, defineJobType } from '../job-type.js';

export const purgeSessions = defineJobType({
  name: 'purgeSessions',
  label: 'Purge stale sessions',
  summary: 'Deletes sessions inactive for more than N days (admin only).',
  payload: z.strictObject({
    inactiveDays: z
      .int()
      .min(1)
      .max(3650)
      .meta({ description: 'Sessions whose lastActiveAt is older than this many days are deleted.', format: 'int32' }),
  }),
  example: { inactiveDays: 30 },
  roles: ['admin'],
  minIntervalSeconds: 3600,
  policy: { timeoutMs: 10 * 60_000, lockLifetimeMs: 5 * 60_000, maxAttempts: 2 },
  // A purge that ran late still does the whole job: one catch-up run is all that is needed.
  defaults: { misfirePolicy: 'runOnce' },
  settings: ['SESSIONS_COLLECTION'],
  // Idempotent by nature: a repeated run finds nothing left to delete.
  async handler(p, ctx) {
    const cutoff = new Date(ctx.scheduledFor.getTime() - p.inactiveDays * DAY_MS);
    const { deletedCount } = await ctx.conn
      .collection(ctx.settings.SESSIONS_COLLECTION)
      .deleteMany({ lastActiveAt: { $lt: cutoff } });
    ctx.logger.info({ deletedCount, cutoff }, 'stale sessions purged');
    return { deleted: deletedCount, cutoff: cutoff.toISOString() };
  },
});
