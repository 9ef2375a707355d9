import type { Connection } from 'mongoose';
import { auditLogModel } from './audit-log.model.js';
import { cronJobModel } from './cron-job.model.js';
import { reportModel } from './report.model.js';
import { runClaimModel, runModel } from './run.model.js';

/** Every model bound to one connection. */
export function models(conn: Connection) {
  return {
    CronJob: cronJobModel(conn),
    Run: runModel(conn),
    RunClaim: runClaimModel(conn),
    AuditLog: auditLogModel(conn),
    Report: reportModel(conn),
  };
}

export type Models = ReturnType<typeof models>;

/** Creates the indexes (unique ones included) once at start-up; autoIndex is off. */
export async function ensureIndexes(m: Models): Promise<void> {
  for (const model of Object.values(m)) await model.createIndexes();
}
