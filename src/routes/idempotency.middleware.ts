import { createMiddleware } from 'hono/factory';
import { requestFingerprint, type StoredResponse } from '../lib/idempotency.js';
import { ApiError } from '../lib/problem.js';
import type { AppEnv } from './app-env.js';

/** Response headers that belong to the result and are replayed with it. */
const REPLAYED_HEADERS = ['content-type', 'etag', 'location'];

/**
 * Answers that say "not now" rather than "this is the result": not kept, so the client may
 * retry with the same key (408, 409, 425, 429 and every 5xx).
 */
const retryable = (status: number) => status >= 500 || [408, 409, 425, 429].includes(status);

/** The key as sent: an sf-string per the draft ("..."), or the bare token most clients send. */
function parseKey(header: string): string {
  const value = header.trim();
  const key = /^"(.*)"$/.exec(value)?.[1] ?? value;
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new ApiError('invalid-request', 'The Idempotency-Key header is invalid: 1-255 visible ASCII characters.', [
      { in: 'header', path: 'Idempotency-Key', message: 'must be 1-255 visible ASCII characters' },
    ]);
  }
  return key;
}

/**
 * Optional `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header-07, Stripe's model):
 * the first request with a key runs and its response is kept; a repeat with the same key and
 * the same method, path and body gets that response again (`Idempotent-Replayed: true`); with
 * another body 422; while the first is still running 409. Keys are per token subject. Without
 * the header nothing changes.
 */
export const idempotent = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header('Idempotency-Key');
  if (header === undefined) return next();
  const key = parseKey(header);
  const { idempotency } = c.var.guards;
  const fingerprint = requestFingerprint(c.req.method, c.req.path, await c.req.text());
  const claim = await idempotency.claim(c.var.caller.id, key, fingerprint);
  if (claim.kind === 'mismatch') {
    throw new ApiError(
      'idempotency-key-reused',
      'This Idempotency-Key was used for a different request; use a new key for a new request.',
      [{ in: 'header', path: 'Idempotency-Key', message: 'already used with another body or operation' }],
    );
  }
  if (claim.kind === 'in-flight') {
    throw new ApiError(
      'idempotency-key-in-use',
      'A request with this Idempotency-Key is still in progress; retry when it has finished.',
      [{ in: 'header', path: 'Idempotency-Key', message: 'a request with this key is in progress' }],
    );
  }
  if (claim.kind === 'replay') {
    const { status, headers, body } = claim.response;
    return c.body(body, status as 200, { ...headers, 'Idempotent-Replayed': 'true' });
  }

  try {
    await next();
  } catch (error) {
    // Errors are normally turned into responses below us; one that escapes frees the key.
    await idempotency.release(claim.id).catch(() => undefined);
    throw error;
  }
  if (retryable(c.res.status)) {
    await idempotency.release(claim.id);
    return;
  }
  const response: StoredResponse = { status: c.res.status, headers: {}, body: await c.res.clone().text() };
  for (const name of REPLAYED_HEADERS) {
    const value = c.res.headers.get(name);
    if (value !== null) response.headers[name] = value;
  }
  await idempotency.finish(claim.id, response);
});
