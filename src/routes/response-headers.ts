/** Response headers documented on the routes that send them (OpenAPI header objects). */

const text = (description: string, example: string, maxLength = 500) => ({
  description,
  schema: { type: 'string' as const, maxLength },
  example,
});

/** draft-ietf-httpapi-ratelimit-headers: one list member per policy that applied to the request. */
export const rateLimitHeaders = {
  'RateLimit-Policy': text(
    'The limits that applied: policy name, quota `q` and window `w` in seconds.',
    '"ip";q=300;w=60, "user";q=120;w=60',
  ),
  RateLimit: text(
    'What is left of each: remaining `r` and seconds `t` until the window resets.',
    '"ip";r=299;t=60, "user";r=119;t=60',
  ),
};

export const etagHeader = {
  ETag: text(
    'The version of the job; send it back in `If-Match` to change or delete only this version.',
    '"n2Q5Yk1vZ1pQd3hJc0RrYz"',
    100,
  ),
};

export const replayedHeader = {
  'Idempotent-Replayed': {
    description: '`true` when this is the stored response of an earlier request with the same `Idempotency-Key`.',
    schema: { type: 'string' as const, enum: ['true'] },
    example: 'true',
  },
};

export const retryAfterHeader = {
  'Retry-After': {
    description: 'Seconds to wait before retrying.',
    schema: { type: 'integer' as const, format: 'int32', minimum: 1, maximum: 86_400 },
    example: 30,
  },
};

/** On every answer (hono's requestId middleware, the app's first): the id of its log lines. */
const requestIdHeader = {
  'X-Request-Id': text(
    "The request's id: the one sent in `X-Request-Id` when it was valid, else a new UUID. Quote it when reporting.",
    'b3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d',
    255,
  ),
};

/** Sent only to a browser origin listed in CORS_ORIGINS (src/lib/http-hygiene.ts); none by default. */
const corsHeader = {
  'Access-Control-Allow-Origin': text(
    'The requesting origin, when it is one of `CORS_ORIGINS`; absent otherwise (native apps need no CORS).',
    'https://app.example.com',
    2000,
  ),
};

type Operation = { responses?: Record<string, { headers?: Record<string, unknown> }> };

/**
 * Adds the headers the app-wide middleware puts on answers to every documented response: the
 * request id and CORS everywhere, the rate limits on every answer of the rate-limited /api/cron
 * routes (a 401 too: the per-address limit runs before the token is checked). A route's own
 * declaration of a header wins. Applied to the generated document (app.ts), so no route can
 * forget them.
 */
export function documentCommonHeaders<D extends { paths?: object }>(doc: D): D {
  for (const [path, item] of Object.entries((doc.paths ?? {}) as Record<string, Record<string, Operation>>)) {
    for (const operation of Object.values(item)) {
      for (const response of Object.values(operation.responses ?? {})) {
        response.headers = {
          ...(path.startsWith('/api/cron/') ? rateLimitHeaders : {}),
          ...response.headers,
          ...requestIdHeader,
          ...corsHeader,
        };
      }
    }
  }
  return doc;
}
