import type { AuthVariables } from '../lib/auth.js';
import type { Logger } from '../lib/logger.js';
import type { CronJobService } from '../scheduler/service.js';

/** What every request carries: set by middleware in app.ts. */
export type AppEnv = { Variables: AuthVariables & { service: CronJobService; logger: Logger; requestId: string } };
