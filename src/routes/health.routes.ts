import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { ApiError } from '../lib/problem.js';
import type { AppEnv } from './app-env.js';
import { problemResponses } from './problem-responses.js';

const Health = z.object({ status: z.literal('ok') }).openapi('Health', { example: { status: 'ok' } });

export const healthz = createRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'healthz',
  summary: 'Liveness: the process answers',
  description:
    "Answers 200 while the process runs, whatever the database does: for a process supervisor or a load balancer's " +
    'liveness probe. No authentication.',
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
  description:
    'Answers 200 when the database answers a ping within 2 s, else 503: take the instance out of rotation until it ' +
    'is ready again. No authentication.',
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
