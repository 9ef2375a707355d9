import type { Connection } from 'mongoose';
import type { z } from 'zod';
import type { Env } from '../env.js';
import type { Logger } from '../lib/logger.js';
import type { Models } from '../models/index.js';

export type Role = 'user' | 'admin';

/** What a handler gets besides its payload. */
export interface JobContext {
  runId: string;
  jobId: string;
  ownerId: string;
  /** The slot this run is for; a manual run's is the time it was requested. */
  scheduledFor: Date;
  trigger: 'schedule' | 'manual';
  logger: Logger;
  conn: Connection;
  models: Models;
  config: Env;
}

/**
 * A whitelisted job type: data plus one idempotent function. Running a handler twice for the
 * same run id must not do the work twice where that can be avoided (see each type).
 */
export interface JobType<P extends z.ZodType = z.ZodType> {
  name: string;
  summary: string;
  payload: P;
  /** Roles allowed to create jobs of this type. */
  roles: readonly Role[];
  /** How long a worker holds the Agenda lock of a run; a dead worker's run is freed after it. */
  lockLifetimeMs?: number;
  /** What the handler reports lands on the run as `result`. */
  handler(payload: z.infer<P>, ctx: JobContext): Promise<Record<string, unknown>>;
}

export const defineJobType = <P extends z.ZodType>(type: JobType<P>): JobType<P> => type;

export const DAY_MS = 24 * 60 * 60 * 1000;
