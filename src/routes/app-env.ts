import type { AuthVariables } from '../lib/auth.js';
import type { Guards } from '../lib/guards.js';
import type { Logger } from '../lib/logger.js';
import type { CronJobService } from '../scheduler/service.js';

/** What every request carries: set by middleware in app.ts. */
export type AppEnv = {
  Variables: AuthVariables & { service: CronJobService; guards: Guards; logger: Logger; requestId: string };
};
