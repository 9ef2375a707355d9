import { PROBLEMS, ProblemSchema, type ProblemCode } from '../lib/problem.js';
import { rateLimitHeaders, retryAfterHeader } from './response-headers.js';

type HeaderObject = { description: string; schema: { type: 'string' | 'integer' }; example: unknown };

/** Documented error responses of a route, derived from the one list of problems. */
export function problemResponses(...codes: ProblemCode[]) {
  const responses: Record<
    number,
    { description: string; headers?: Record<string, HeaderObject>; content: { 'application/problem+json': { schema: typeof ProblemSchema } } }
  > = {};
  for (const code of [...codes, 'internal' as const]) {
    const { status, title } = PROBLEMS[code];
    const previous = responses[status];
    responses[status] = {
      description: previous ? `${previous.description}; ${title}` : title,
      ...(code === 'rate-limited' ? { headers: { ...retryAfterHeader, ...rateLimitHeaders } } : {}),
      content: { 'application/problem+json': { schema: ProblemSchema } },
    };
  }
  return responses;
}
