import type { HttpBindings } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { createMiddleware } from 'hono/factory';
import { secureHeaders } from 'hono/secure-headers';

/**
 * Security headers on every response (OWASP Secure Headers: nosniff, no framing, no referrer,
 * HSTS, same-origin resource and opener policies). JSON answers get a CSP that allows nothing;
 * the reference page gets one that allows only this server, so it also cannot load from a CDN.
 */
const apiHeaders = secureHeaders({ contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } });
const pageHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'self'"],
    // Scalar's page boots from an inline script and injects its styles at run time.
    scriptSrc: ["'self'", "'unsafe-inline'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    imgSrc: ["'self'", 'data:', 'blob:'],
    fontSrc: ["'self'", 'data:'],
    workerSrc: ["'self'", 'blob:'],
    connectSrc: ["'self'"],
    frameAncestors: ["'none'"],
  },
});

/** Paths that serve HTML for people rather than JSON for programs. */
export const PAGE_PATHS = new Set(['/reference']);

export const securityHeaders = createMiddleware((c, next) =>
  PAGE_PATHS.has(c.req.path) ? pageHeaders(c, next) : apiHeaders(c, next),
);

/**
 * CORS for the configured browser origins only; with none configured, no CORS headers at all,
 * so browsers on other sites cannot read answers (native mobile apps do not use CORS).
 * Credentials stay off: the API authenticates by bearer token, never by cookie.
 */
export function corsFor(origins: string[]): MiddlewareHandler | undefined {
  if (origins.length === 0) return undefined;
  return cors({
    origin: origins,
    allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'If-Match', 'X-Request-Id'],
    exposeHeaders: [
      'X-Request-Id',
      'ETag',
      'Location',
      'Retry-After',
      'RateLimit',
      'RateLimit-Policy',
      'Idempotent-Replayed',
    ],
    maxAge: 600,
  });
}

/**
 * `Connection: close` (RFC 9112 section 9.6) on an answer sent before the request body has fully
 * arrived: a 413, or a refusal that never read the body, such as a 401 or 415 to a large upload.
 * @hono/node-server drops such a connection rather than read the rest (it drains at most 64 MiB
 * for half a second, and did not drain at all a body the body limit had started reading), so a
 * keep-alive client told nothing sends its next request on a connection about to close, and that
 * request fails ("other side closed", "socket hang up"). Told, it opens a new connection.
 */
export const closeAfterUnreadBody = createMiddleware<{ Bindings: Partial<HttpBindings> | undefined }>(
  async (c, next) => {
    await next();
    // No incoming message when the app is called directly (app.request() in tests): nothing to close.
    const incoming = c.env?.incoming;
    if (c.res.status === 413 || (incoming && !incoming.complete)) c.header('Connection', 'close');
  },
);
