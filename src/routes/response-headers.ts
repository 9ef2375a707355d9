/** Response headers documented on the routes that send them (OpenAPI header objects). */

const text = (description: string, example: string) => ({ description, schema: { type: 'string' as const }, example });

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
  ),
};

export const replayedHeader = {
  'Idempotent-Replayed': text(
    '`true` when this is the stored response of an earlier request with the same `Idempotency-Key`.',
    'true',
  ),
};

export const retryAfterHeader = {
  'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' as const }, example: 30 },
};
