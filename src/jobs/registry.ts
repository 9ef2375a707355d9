import type { JobType } from './job-type.js';
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

const byName = new Map<string, JobType>(jobTypes.map((t) => [t.name, t as JobType]));

export const jobTypeNames = jobTypes.map((t) => t.name) as [JobTypeName, ...JobTypeName[]];

export function getJobType(name: string): JobType | undefined {
  return byName.get(name);
}
