import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { int32 } from './int32.js';

/** Every error the API can answer with: the one list the documented responses derive from. */
export const PROBLEMS = {
  'invalid-request': {
    status: 400,
    title: 'The request is invalid',
    description:
      'A value is missing, malformed or not allowed; `errors` says which and where (body, query, path or header).',
  },
  unauthorized: {
    status: 401,
    title: 'Authentication required',
    description:
      'Send `Authorization: Bearer <JWT>` with `sub` and an `exp` in the future: HS256 signed with the service ' +
      'secret, or RS256/ES256 by a key of the configured JWKS (with its issuer and audience).',
  },
  forbidden: {
    status: 403,
    title: 'Not allowed',
    description: "Your role may not do this, e.g. create a job of an admin-only type or list another owner's jobs.",
  },
  'payload-not-allowed': {
    status: 403,
    title: 'Payload not allowed',
    description:
      'The payload is well-formed but not allowed for you by the configuration: a sendEmail recipient must be at ' +
      "an allowed domain (`EMAIL_ALLOWED_DOMAINS`) or your own address (the token's `email` claim). `errors` " +
      'names the field.',
  },
  'not-found': {
    status: 404,
    title: 'Not found',
    description: 'No such route, or no job with this id among the jobs you may see.',
  },
  'method-not-allowed': {
    status: 405,
    title: 'Method not allowed',
    description: 'The path exists but not with this method; the `Allow` header lists the methods it has.',
  },
  conflict: {
    status: 409,
    title: 'Conflict',
    description: 'The change collides with existing data, e.g. you already have a job with this name.',
  },
  'job-limit-reached': {
    status: 409,
    title: 'Job limit reached',
    description: 'You have as many jobs as one owner may have (`MAX_JOBS_PER_OWNER`, 50 by default); delete one first.',
  },
  'idempotency-key-in-use': {
    status: 409,
    title: 'Idempotency key in use',
    description:
      'A request with this `Idempotency-Key` is still being processed; retry after it has finished to get its ' +
      'response.',
  },
  'precondition-failed': {
    status: 412,
    title: 'Precondition failed',
    description:
      'The job changed since you read it: its `ETag` no longer matches your `If-Match`. Read it again and retry.',
  },
  'payload-too-large': {
    status: 413,
    title: 'Request body too large',
    description:
      'Bodies are limited to 64 KiB. The server closes the connection after this answer (`Connection: close`) ' +
      'rather than read the rest; send the next request on a new one.',
  },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported media type',
    description: 'Send request bodies as `application/json`.',
  },
  'idempotency-key-reused': {
    status: 422,
    title: 'Idempotency key reused',
    description:
      'This `Idempotency-Key` was already used for a different request (another body or operation); use a new key.',
  },
  'rate-limited': {
    status: 429,
    title: 'Too many requests',
    description:
      'You sent more requests than the limits allow (per user, per IP address, and for run-now); wait for ' +
      '`Retry-After` seconds. `RateLimit-Policy` and `RateLimit` describe the limits.',
  },
  unavailable: {
    status: 503,
    title: 'Service unavailable',
    description: 'The database does not answer; retry with backoff.',
  },
  internal: {
    status: 500,
    title: 'Internal error',
    description: "A bug on our side; the log has the details under the response's x-request-id.",
  },
} as const satisfies Record<string, { status: ContentfulStatusCode; title: string; description: string }>;

export type ProblemCode = keyof typeof PROBLEMS;
const PROBLEM_CODES = Object.keys(PROBLEMS) as [ProblemCode, ...ProblemCode[]];

/**
 * The problem's `type`: a URI reference resolved against the API's own address, where
 * GET /problems/{code} describes it (RFC 9457 section 3.1.1).
 */
export const problemType = <C extends ProblemCode>(code: C) => `/problems/${code}` as const;
export type ProblemTypeUri = ReturnType<typeof problemType<ProblemCode>>;

/** A closed list, published as enums so clients can switch on them (generated/client.ts `isProblem`). */
export const ProblemTypeSchema = z
  .enum(PROBLEM_CODES.map(problemType) as [ProblemTypeUri, ...ProblemTypeUri[]])
  .openapi('ProblemTypeUri', {
    description: 'Which problem this is: `/problems/{code}`, one of the codes GET /problems/{code} describes.',
    example: '/problems/invalid-request',
  });
const PROBLEM_STATUSES = [...new Set(Object.values(PROBLEMS).map((p) => p.status))].sort((a, b) => a - b);
// An integer with the enum restated: zod-to-openapi writes only the first value of a multi-value literal.
export const ProblemStatusSchema = int32(400, 599).openapi('ProblemStatus', {
  enum: PROBLEM_STATUSES,
  description: 'The HTTP status of the answer, repeated.',
  example: 400,
});

/**
 * The longest texts and lists a problem carries (OWASP API4: every string and array the API
 * answers has a documented maximum). `problem()` clips to them: a 64 KiB body of unknown fields
 * would otherwise list thousands of errors.
 */
export const PROBLEM_LIMITS = { title: 100, detail: 2000, instance: 2000, path: 500, message: 1000, errors: 100 };
const text = (max: number) => z.string().max(max);
const clip = (value: string, max: number) => (value.length > max ? `${value.slice(0, max - 1)}…` : value);

export const FieldErrorSchema = z
  .object({
    in: z
      .enum(['body', 'query', 'path', 'header'])
      .openapi({ description: 'Which part of the request holds the bad value.' }),
    path: text(PROBLEM_LIMITS.path).openapi({
      description: 'Dotted path to the value inside that part; empty for the part as a whole.',
      example: 'payload.to',
    }),
    message: text(PROBLEM_LIMITS.message).openapi({ example: 'Invalid email address' }),
  })
  .openapi('FieldError');

export const ProblemSchema = z
  .object({
    type: ProblemTypeSchema,
    title: text(PROBLEM_LIMITS.title),
    status: ProblemStatusSchema,
    detail: text(PROBLEM_LIMITS.detail),
    instance: text(PROBLEM_LIMITS.instance).optional().openapi({ description: 'The request path.' }),
    requestId: text(255).openapi({
      description:
        'Also in the `X-Request-Id` header and on every log line of the request: quote it when reporting a problem.',
    }),
    errors: z.array(FieldErrorSchema).max(PROBLEM_LIMITS.errors).optional(),
  })
  .openapi('Problem', { description: 'RFC 9457 problem details.' });

export type FieldError = z.infer<typeof FieldErrorSchema>;
export type Problem = z.infer<typeof ProblemSchema>;

/** An error the API answers with its own problem; thrown from handlers and the scheduler module. */
export class ApiError extends Error {
  constructor(
    readonly code: ProblemCode,
    detail: string,
    readonly errors?: FieldError[],
  ) {
    super(detail);
  }
}

export function problem(code: ProblemCode, detail: string, errors?: FieldError[]): Omit<Problem, 'requestId'> {
  const { status, title } = PROBLEMS[code];
  const listed = errors
    ?.slice(0, PROBLEM_LIMITS.errors)
    .map((e) => ({ ...e, path: clip(e.path, PROBLEM_LIMITS.path), message: clip(e.message, PROBLEM_LIMITS.message) }));
  return {
    type: problemType(code),
    title,
    status,
    detail: clip(detail, PROBLEM_LIMITS.detail),
    ...(listed?.length ? { errors: listed } : {}),
  };
}

/** Writes an RFC 9457 problem (https://www.rfc-editor.org/rfc/rfc9457) as the response. */
export function sendProblem(c: Context, code: ProblemCode, detail: string, errors?: FieldError[]) {
  // Set by hono's requestId middleware, the app's first: every problem can be found in the log.
  const body: Problem = {
    ...problem(code, detail, errors),
    instance: clip(c.req.path, PROBLEM_LIMITS.instance),
    requestId: c.get('requestId') as string,
  };
  return c.body(JSON.stringify(body), PROBLEMS[code].status, { 'Content-Type': 'application/problem+json' });
}

/** What a client is told about a top-level body field the service sets itself (mass assignment, OWASP API3). */
export const SERVER_OWNED_MESSAGE = 'server-owned field: set by the service, it cannot be written';

/**
 * One entry per issue. `serverOwned` names top-level body fields that exist on the resource
 * but belong to the service (ownerId, status...): writing one is refused as server-owned
 * rather than as an unknown field, so a client learns why.
 */
export function fieldErrors(
  where: FieldError['in'],
  error: z.ZodError,
  serverOwned: ReadonlySet<string> = new Set(),
): FieldError[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    // One entry per unknown field, at the field itself, so a client can point at it.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        in: where,
        path: [...path, key].join('.'),
        message: path.length === 0 && serverOwned.has(key) ? SERVER_OWNED_MESSAGE : 'unknown field',
      }));
    }
    return [{ in: where, path: path.join('.'), message: issue.message }];
  });
}

/** The problem for one of Hono's own 4xx exceptions (malformed JSON, a missing content type...). */
export function problemCodeForStatus(status: number): ProblemCode {
  const match = (Object.keys(PROBLEMS) as ProblemCode[]).find((code) => PROBLEMS[code].status === status);
  return match && status < 500 ? match : 'invalid-request';
}
