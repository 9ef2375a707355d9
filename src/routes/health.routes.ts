import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './app-env.js';
import { ApiError } from '../lib/problem.js';
import { problemResponses } from './problem-responses.js';

const Health = z.object({ status: z.literal('ok') }).openapi('Health');

export const healthz = createRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'healthz',
  summary: 'Liveness: the process answers',
  tags: ['Health'],
  // Public: an empty list says so explicitly (no security scheme applies).
  security: [],
  responses: { 200: { description: 'Alive.', content: { 'application/json': { schema: Health } } } },
});

export const readyz = createRoute({
  method: 'get',
  path: '/readyz',
  operationId: 'readyz',
  summary: 'Readiness: the database answers',
  tags: ['Health'],
  // Public: an empty list says so explicitly (no security scheme applies).
  security: [],
  responses: {
    200: { description: 'Ready.', content: { 'application/json': { schema: Health } } },
    ...problemResponses('unavailable'),
  },
});

export function registerHealthRoutes(app: OpenAPIHono<AppEnv>, ready: () => Promise<boolean>) {
  return app
    .openapi(healthz, (c) => c.json({ status: 'ok' as const }, 200))
    .openapi(readyz, async (c) => {
      if (await ready()) return c.json({ status: 'ok' as const }, 200);
      throw new ApiError('unavailable', 'The database does not answer.');
    });
}
