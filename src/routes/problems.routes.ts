import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { PROBLEMS, type ProblemCode, ProblemStatusSchema, ProblemTypeSchema, problemType } from '../lib/problem.js';
import type { AppEnv } from './app-env.js';
import { problemResponses } from './problem-responses.js';

const codes = Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]];

const ProblemType = z
  .object({
    type: ProblemTypeSchema,
    status: ProblemStatusSchema,
    title: z.string().max(100),
    description: z.string().max(1000),
  })
  .openapi('ProblemType', {
    example: {
      type: '/problems/invalid-request',
      status: 400,
      title: PROBLEMS['invalid-request'].title,
      description: PROBLEMS['invalid-request'].description,
    },
  });

export const describeProblem = createRoute({
  method: 'get',
  path: '/problems/{code}',
  operationId: 'describeProblem',
  summary: 'What a problem type means',
  description: "The document a problem's `type` points at.",
  tags: ['Problems'],
  security: [],
  request: { params: z.object({ code: z.enum(codes).openapi({ param: { name: 'code', in: 'path' } }) }) },
  responses: {
    200: { description: 'The problem type.', content: { 'application/json': { schema: ProblemType } } },
    ...problemResponses('invalid-request'),
  },
});

export function registerProblemRoutes(app: OpenAPIHono<AppEnv>) {
  return app.openapi(describeProblem, (c) => {
    const code = c.req.valid('param').code;
    return c.json({ type: problemType(code), ...PROBLEMS[code] }, 200);
  });
}
