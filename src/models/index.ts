import type { Connection } from 'mongoose';
import { createMissingCollections, indexNames } from '../db/index.js';
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

/** Deleted jobs whose runs are still kept (src/scheduler/retention.ts); written by the API, so made here. */
export const DELETED_JOBS_COLLECTION = 'history_retention_jobs';

/**
 * Creates the collections and indexes (unique ones included) at start-up: only those missing
 * (by name; asking again for existing ones takes FerretDB's registry lock: createMissingIndexes);
 * autoIndex is off.
 */
export async function ensureIndexes(m: Models): Promise<void> {
  // Created here, before any traffic, even without an index of their own.
  await createMissingCollections(m.Run.db, [
    ...Object.values(m).map((model) => model.collection.collectionName),
    DELETED_JOBS_COLLECTION,
  ]);
  for (const model of Object.values(m)) {
    const existing = await indexNames(model.collection);
    const wanted = model.schema.indexes().map(([key, options]) => options?.name ?? defaultIndexName(key));
    if (wanted.some((name) => !existing.has(name))) await model.createIndexes();
  }
}

/** The name MongoDB gives an index it is not told a name for: `field_1_other_-1`. */
const defaultIndexName = (key: Record<string, unknown>) =>
  Object.entries(key)
    .map(([field, direction]) => `${field}_${String(direction)}`)
    .join('_');
