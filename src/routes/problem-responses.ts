import { PROBLEMS, type ProblemCode } from '../lib/problem.js';
import { Problem } from './cron/cron.schemas.js';

/** Documented error responses of a route, derived from the one list of problems. */
export function problemResponses(...codes: ProblemCode[]) {
  const responses: Record<number, { description: string; content: { 'application/problem+json': { schema: typeof Problem } } }> = {};
  for (const code of [...codes, 'internal' as const]) {
    const { status, title } = PROBLEMS[code];
    const previous = responses[status];
    responses[status] = {
      description: previous ? `${previous.description}; ${title}` : title,
      content: { 'application/problem+json': { schema: Problem } },
    };
  }
  return responses;
}
