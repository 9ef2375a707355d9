import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import { ApiError } from '../lib/problem.js';
import { findUnsafeKey } from '../lib/safe-keys.js';

export const BODY_LIMIT_BYTES = 64 * 1024;

const limit = bodyLimit({
  maxSize: BODY_LIMIT_BYTES,
  onError: () => {
    throw new ApiError('payload-too-large', `The body is over ${BODY_LIMIT_BYTES} bytes.`);
  },
});

/**
 * For routes that take a JSON body: at most 64 KiB, and application/json (a charset parameter
 * allowed; application/json-seq and the like not). A missing Content-Type is a 415 too: the
 * validator would read a request without one as `{}`, so a PATCH with no body at all was a
 * successful no-op although the spec requires a body (found by Schemathesis). Keys that
 * MongoDB could read as operators or paths (`$where`, `a.b`) are refused at any depth, before
 * anything else looks at the body.
 */
export const jsonBody = createMiddleware(async (c, next) => {
  const type = c.req.header('Content-Type');
  if (type === undefined || !/^application\/json\s*(;|$)/i.test(type)) {
    const message = type === undefined ? 'missing' : `got ${type}`;
    throw new ApiError('unsupported-media-type', 'Send the body as application/json.', [
      { in: 'header', path: 'Content-Type', message },
    ]);
  }
  return limit(c, async () => {
    let parsed: unknown;
    try {
      parsed = await c.req.json();
    } catch {
      // Malformed JSON is the validator's to report.
    }
    const unsafe = findUnsafeKey(parsed);
    if (unsafe)
      throw new ApiError('invalid-request', `The request body is invalid: ${unsafe.path}: ${unsafe.message}.`, [
        { in: 'body', ...unsafe },
      ]);
    await next();
  });
});
