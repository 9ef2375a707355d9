import { PROBLEMS, type Problem, type ProblemCode, ProblemSchema, problem } from '../lib/problem.js';
import { rateLimitHeaders, retryAfterHeader } from './response-headers.js';

type HeaderObject = { description: string; schema: { type: 'string' | 'integer' }; example: unknown };
type Example = { summary: string; value: Problem };
type ProblemResponse = {
  description: string;
  headers?: Record<string, HeaderObject>;
  content: { 'application/problem+json': { schema: typeof ProblemSchema; examples: Record<string, Example> } };
};

/** What the reference shows for each problem: its real shape, with a typical detail. */
const EXAMPLE_DETAIL: Record<ProblemCode, Pick<Problem, 'detail' | 'errors'>> = {
  'invalid-request': {
    detail:
      'The request body is invalid: cron: expected 5 fields (minute hour day-of-month month day-of-week), got 4; ' +
      'payload.to: Invalid email address.',
    errors: [
      { in: 'body', path: 'cron', message: 'expected 5 fields (minute hour day-of-month month day-of-week), got 4' },
      { in: 'body', path: 'payload.to', message: 'Invalid email address' },
    ],
  },
  unauthorized: { detail: 'The token has expired.' },
  forbidden: { detail: 'Jobs of type "purgeSessions" can only be created by: admin.' },
  'payload-not-allowed': {
    detail: 'You may only email addresses at an allowed domain or your own.',
    errors: [{ in: 'body', path: 'payload.to', message: 'not an allowed recipient' }],
  },
  'not-found': { detail: 'No job 6650f1c2a8b4e9d2c4a1b2c3 among your jobs.' },
  'method-not-allowed': { detail: 'DELETE is not allowed on /api/cron/jobs; allowed: GET, POST.' },
  conflict: {
    detail: 'You already have a job named "Morning digest".',
    errors: [{ in: 'body', path: 'name', message: 'already used by another of your jobs' }],
  },
  'job-limit-reached': { detail: 'You already have 50 jobs, the most one owner may have.' },
  'idempotency-key-in-use': { detail: 'A request with this Idempotency-Key is still being processed.' },
  'precondition-failed': { detail: 'The job changed since you read it (If-Match does not match its ETag).' },
  'payload-too-large': { detail: 'The body is over 64 KiB.' },
  'unsupported-media-type': {
    detail: 'Send the body as application/json.',
    errors: [{ in: 'header', path: 'Content-Type', message: 'expected application/json' }],
  },
  'idempotency-key-reused': { detail: 'This Idempotency-Key was used for a different request.' },
  'rate-limited': { detail: 'Too many requests; retry in 12 s.' },
  unavailable: { detail: 'The database is unreachable; retry shortly.' },
  internal: { detail: 'Something went wrong on our side.' },
};

/**
 * What every route behind the cron router's middleware may answer besides its own problems
 * (app.ts): no or a bad token, a rate limit, and 503 when the identity provider's key set cannot be
 * fetched (JWKS_URL) or, for the routes that read it, the database is down.
 */
export const AUTHENTICATED = ['unauthorized', 'rate-limited', 'unavailable'] as const satisfies readonly ProblemCode[];

/** Documented error responses of a route, derived from the one list of problems, each with an example. */
export function problemResponses(...codes: ProblemCode[]) {
  const responses: Record<number, ProblemResponse> = {};
  for (const code of [...codes, 'internal' as const]) {
    const { status, title } = PROBLEMS[code];
    const previous = responses[status];
    const { detail, errors } = EXAMPLE_DETAIL[code];
    const example = {
      summary: title,
      value: {
        ...problem(code, detail, errors),
        instance: '/api/cron/jobs',
        requestId: 'b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
      },
    };
    responses[status] = {
      description: previous ? `${previous.description}; ${title}` : title,
      ...(code === 'rate-limited' ? { headers: { ...retryAfterHeader, ...rateLimitHeaders } } : {}),
      content: {
        'application/problem+json': {
          schema: ProblemSchema,
          examples: { ...previous?.content['application/problem+json'].examples, [code]: example },
        },
      },
    };
  }
  return responses;
}
