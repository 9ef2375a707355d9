import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';

/** Every error the API can answer with: the one list the documented responses derive from. */
export const PROBLEMS = {
  'invalid-request': { status: 400, title: 'The request is invalid' },
  unauthorized: { status: 401, title: 'Authentication required' },
  forbidden: { status: 403, title: 'Not allowed' },
  'not-found': { status: 404, title: 'Not found' },
  conflict: { status: 409, title: 'Conflict' },
  'payload-too-large': { status: 413, title: 'Request body too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  unavailable: { status: 503, title: 'Service unavailable' },
  internal: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: ContentfulStatusCode; title: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

export interface FieldError {
  /** Where the bad value is: body, query, path or header. */
  in: 'body' | 'query' | 'path' | 'header';
  /** Dotted path to the value inside that part, empty for the part as a whole. */
  path: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldError[];
}

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

export const problemType = (code: ProblemCode) => `https://cron-jobs.dev/problems/${code}`;

export function problem(code: ProblemCode, detail: string, errors?: FieldError[]): Problem {
  const { status, title } = PROBLEMS[code];
  return { type: problemType(code), title, status, detail, ...(errors?.length ? { errors } : {}) };
}

/** Writes an RFC 9457 problem (https://www.rfc-editor.org/rfc/rfc9457) as the response. */
export function sendProblem(c: Context, code: ProblemCode, detail: string, errors?: FieldError[]) {
  const body = { ...problem(code, detail, errors), instance: c.req.path };
  return c.body(JSON.stringify(body), PROBLEMS[code].status, { 'Content-Type': 'application/problem+json' });
}

export function fieldErrors(where: FieldError['in'], error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String);
    // One entry per unknown field, at the field itself, so a client can point at it.
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ in: where, path: [...path, key].join('.'), message: 'unknown field' }));
    }
    return [{ in: where, path: path.join('.'), message: issue.message }];
  });
}

/** The problem for one of Hono's own 4xx exceptions (malformed JSON, a missing content type...). */
export function problemCodeForStatus(status: number): ProblemCode {
  const match = (Object.keys(PROBLEMS) as ProblemCode[]).find((code) => PROBLEMS[code].status === status);
  return match && status < 500 ? match : 'invalid-request';
}
