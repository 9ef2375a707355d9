import mongoose from 'mongoose';
import { z } from 'zod';
import { DAY_MS, defineJobType } from '../job-type.js';

export const cleanupOldAuditLogs = defineJobType({
  name: 'cleanupOldAuditLogs',
  label: 'Clean up old audit entries',
  summary: 'Deletes audit entries older than N days (admin only).',
  payload: z.strictObject({
    olderThanDays: z
      .int()
      .min(1)
      .max(3650)
      .meta({ description: 'Audit entries older than this many days are deleted.', format: 'int32' }),
  }),
  example: { olderThanDays: 90 },
  roles: ['admin'],
  minIntervalSeconds: 3600,
  policy: { timeoutMs: 10 * 60_000, lockLifetimeMs: 5 * 60_000, maxAttempts: 2 },
  async handler(p, ctx) {
    const cutoff = new Date(ctx.scheduledFor.getTime() - p.olderThanDays * DAY_MS);
    const { deletedCount } = await ctx.models.AuditLog.deleteMany({ at: mongoose.trusted({ $lt: cutoff }) });
    ctx.logger.info({ deletedCount, cutoff }, 'old audit entries deleted');
    return { deleted: deletedCount, cutoff: cutoff.toISOString() };
  },
});
