import { z } from 'zod';
import { DAY_MS, defineJobType } from '../job-type.js';

export const purgeSessions = defineJobType({
  name: 'purgeSessions',
  summary: 'Deletes sessions inactive for more than N days (admin only).',
  payload: z.strictObject({
    inactiveDays: z.int().min(1).max(3650).meta({ description: 'Sessions whose lastActiveAt is older than this many days are deleted.' }),
  }),
  roles: ['admin'],
  // Idempotent by nature: a repeated run finds nothing left to delete.
  async handler(p, ctx) {
    const cutoff = new Date(ctx.scheduledFor.getTime() - p.inactiveDays * DAY_MS);
    const { deletedCount } = await ctx.conn
      .collection(ctx.config.SESSIONS_COLLECTION)
      .deleteMany({ lastActiveAt: { $lt: cutoff } });
    ctx.logger.info({ deletedCount, cutoff }, 'stale sessions purged');
    return { deleted: deletedCount, cutoff: cutoff.toISOString() };
  },
});
