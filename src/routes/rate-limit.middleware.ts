import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { ApiError } from '../lib/problem.js';
import type { RateLimitPolicy } from '../lib/rate-limit.js';
import type { AppEnv } from './app-env.js';

/**
 * The client's address: the socket's, or with TRUST_PROXY_HOPS = n the entry the n-th proxy
 * (counting from us) appended to X-Forwarded-For; entries further left are the client's word.
 */
export function clientAddress(c: Context, trustProxyHops: number): string {
  let socket = 'unknown';
  try {
    socket = getConnInfo(c).remote.address ?? socket;
  } catch {
    // Not served by @hono/node-server (app.request() in a test): no socket to ask.
  }
  if (trustProxyHops === 0) return socket;
  const chain = (c.req.header('X-Forwarded-For') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return chain[chain.length - trustProxyHops] ?? socket;
}

const explain: Record<RateLimitPolicy, string> = {
  ip: 'requests from your address',
  user: 'requests with your account',
  'run-now': 'run-now requests with your account',
};

/**
 * Counts the request against one policy and advertises it with the `RateLimit-Policy` and
 * `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers (one list member per policy that
 * applied); over the quota, 429 problem+json with `Retry-After`. The `ip` policy needs no token
 * (it runs before authentication); `user` and `run-now` count per token subject.
 */
export const rateLimit = (policy: RateLimitPolicy) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const { rateLimits, trustProxyHops } = c.var.guards;
    if (!rateLimits.enabled(policy)) return next();
    const key = policy === 'ip' ? clientAddress(c, trustProxyHops) : c.var.caller.id;
    const outcome = (await rateLimits.consume(policy, key))!;
    c.header('RateLimit-Policy', `"${policy}";q=${outcome.quota};w=${outcome.windowSeconds}`, { append: true });
    c.header('RateLimit', `"${policy}";r=${outcome.remaining};t=${outcome.resetSeconds}`, { append: true });
    if (!outcome.allowed) {
      c.header('Retry-After', String(Math.max(1, outcome.resetSeconds)));
      throw new ApiError(
        'rate-limited',
        `Too many ${explain[policy]}: at most ${outcome.quota} per ${outcome.windowSeconds} s. ` +
          `Retry in ${Math.max(1, outcome.resetSeconds)} s.`,
      );
    }
    await next();
  });
