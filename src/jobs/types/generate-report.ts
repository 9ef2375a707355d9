import mongoose, { Types } from 'mongoose';
import { z } from 'zod';
import { DAY_MS, defineJobType } from '../job-type.js';

const PERIOD_MS = { day: 1, week: 7, month: 30 } as const;
export const generateReport = defineJobType({
  name: 'generateReport',
  label: 'Generate a run report',
  summary: "Computes run statistics of the owner's jobs for a period and stores a report.",
  payload: z.strictObject({
    type: z.enum(['runs']).meta({ description: 'What to report on; "runs" counts the runs of your jobs by status.' }),
    period: z.enum(['day', 'week', 'month']).meta({ description: 'The window ending at the run: 1, 7 or 30 days.' }),
  }),
  example: { type: 'runs', period: 'week' },
  roles: ['user', 'admin'],
  // A report of a missed day is still wanted, but one is enough.
  defaults: { misfirePolicy: 'runOnce' },
  async handler(p, ctx) {
    const to = ctx.scheduledFor;
    const from = new Date(to.getTime() - PERIOD_MS[p.period] * DAY_MS);
    // The local database narrows by the equality in SQL and applies the range after (src/db/quirks.ts).
    const runs = await ctx.models.Run.find(
      { ownerId: ctx.ownerId, scheduledFor: mongoose.trusted({ $gte: from, $lt: to }) },
      { status: 1, durationMs: 1 },
    ).lean();
    const byStatus: Record<string, number> = {};
    let totalMs = 0;
    let timed = 0;
    for (const run of runs) {
      byStatus[run.status] = (byStatus[run.status] ?? 0) + 1;
      if (typeof run.durationMs === 'number') {
        totalMs += run.durationMs;
        timed++;
      }
    }
    const stats = { total: runs.length, byStatus, averageDurationMs: timed ? Math.round(totalMs / timed) : null };
    // Keyed by run id: a repeated run replaces its report instead of adding a second one.
    const runId = new Types.ObjectId(ctx.runId);
    const report = await ctx.models.Report.findOneAndUpdate(
      { runId },
      {
        $set: {
          jobId: new Types.ObjectId(ctx.jobId),
          ownerId: ctx.ownerId,
          type: p.type,
          period: p.period,
          from,
          to,
          stats,
        },
        $setOnInsert: { createdAt: new Date() },
      },
      { upsert: true, returnDocument: 'after' },
    ).lean();
    return { reportId: String(report!._id), ...stats };
  },
});
