import type { Env } from '../env.js';
import { type JobType, type RunPolicy, runPolicyOf } from './job-type.js';
import { cleanupOldAuditLogs } from './types/cleanup-old-audit-logs.js';
import { generateReport } from './types/generate-report.js';
import { purgeSessions } from './types/purge-sessions.js';
import { sendEmail } from './types/send-email.js';

/** The whitelist. Adding a type: one file in types/, and its import and entry here. */
export const jobTypes = [
  sendEmail,
  purgeSessions,
  generateReport,
  cleanupOldAuditLogs,
] as const satisfies readonly JobType[];

type JobTypeName = (typeof jobTypes)[number]['name'];

const byName = new Map<string, JobType>(jobTypes.map((t) => [t.name, t]));

export const jobTypeNames = jobTypes.map((t) => t.name) as [JobTypeName, ...JobTypeName[]];

export function getJobType(name: string): JobType | undefined {
  return byName.get(name);
}

/** The run policy of a stored job's or run's type; a type no longer registered gets the defaults. */
export function runPolicyFor(typeName: string, config: Pick<Env, 'JOB_TYPE_POLICIES'>): RunPolicy {
  return runPolicyOf(getJobType(typeName) ?? { name: typeName }, config);
}
