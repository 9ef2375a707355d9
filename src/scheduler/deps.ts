import type { Agenda } from 'agenda';
import type { Connection } from 'mongoose';
import type { Env } from '../env.js';
import type { Logger } from '../lib/logger.js';
import type { Models } from '../models/index.js';

/** What every part of the scheduler works with; openScheduler makes one per connection. */
export interface SchedulerDeps {
  agenda: Agenda;
  conn: Connection;
  models: Models;
  config: Env;
  logger: Logger;
}

/** The one-off Agenda job that executes a run (scheduled, catch-up or manual); named by the job's type. */
export interface RunJobData {
  jobId: string;
  runId: string;
}

/**
 * For the scheduler's own writes to a cron job (next fire, slots, run state): they leave
 * `updatedAt` alone, since it stands for the owner's last edit, which the ETag and the API's
 * edit-conflict check compare; a run finishing must not make an edit look stale.
 */
export const NOT_AN_EDIT = { timestamps: false } as const;
