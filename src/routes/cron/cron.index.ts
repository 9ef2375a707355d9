import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';
import * as handlers from './cron.handlers.js';
import * as routes from './cron.routes.js';
import { TimeZone } from './cron.schemas.js';

/** Mounts the cron-job operations on a router (under /api/cron in app.ts). */
export function registerCronRoutes(router: OpenAPIHono<AppEnv>) {
  // Before the routes reach it: see TimeZone.
  router.openAPIRegistry.register('TimeZone', TimeZone);
  return router
    .openapi(routes.create, handlers.create)
    .openapi(routes.list, handlers.list)
    .openapi(routes.get, handlers.get)
    .openapi(routes.replace, handlers.replace)
    .openapi(routes.patch, handlers.patch)
    .openapi(routes.remove, handlers.remove)
    .openapi(routes.runNow, handlers.runNow)
    .openapi(routes.listRuns, handlers.listRuns)
    .openapi(routes.preview, handlers.preview);
}
