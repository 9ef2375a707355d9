import { PROBLEMS, ProblemSchema, type ProblemCode } from '../lib/problem.js';

/** Documented error responses of a route, derived from the one list of problems. */
export function problemResponses(...codes: ProblemCode[]) {
  const responses: Record<number, { description: string; content: { 'application/problem+json': { schema: typeof ProblemSchema } } }> = {};
  for (const code of [...codes, 'internal' as const]) {
    const { status, title } = PROBLEMS[code];
    const previous = responses[status];
    responses[status] = {
      description: previous ? `${previous.description}; ${title}` : title,
      content: { 'application/problem+json': { schema: ProblemSchema } },
    };
  }
  return responses;
}
