import { createMiddleware } from 'hono/factory';
import { verify } from 'hono/jwt';
import type { JWTPayload } from 'hono/utils/jwt/types';
import { ApiError } from './problem.js';

export interface Caller {
  /** The `sub` claim: the owner id of the caller's jobs. */
  id: string;
  isAdmin: boolean;
  /** The `email` claim, unless the token says it is unverified (`email_verified: false`); sendEmail may always write to it. */
  email?: string;
}

export type AuthVariables = { caller: Caller };

function callerFrom(claims: JWTPayload): Caller {
  if (typeof claims.sub !== 'string' || claims.sub.length === 0) {
    throw new ApiError('unauthorized', 'The token has no subject (sub) claim.');
  }
  if (typeof claims.exp !== 'number') throw new ApiError('unauthorized', 'The token has no expiry (exp) claim.');
  const roles = Array.isArray(claims.roles) ? claims.roles : [];
  const email = typeof claims.email === 'string' && claims.email_verified !== false ? claims.email : undefined;
  return { id: claims.sub, isAdmin: claims.role === 'admin' || roles.includes('admin'), ...(email ? { email } : {}) };
}

/** Bearer JWT, HS256 only; `sub` is the owner id; admin by `role` or `roles`. */
export const requireAuth = (secret: string) =>
  createMiddleware<{ Variables: AuthVariables }>(async (c, next) => {
    const header = c.req.header('Authorization');
    const match = header?.match(/^Bearer\s+(\S+)$/i);
    if (!match) throw new ApiError('unauthorized', 'Send an Authorization: Bearer <token> header.');
    let claims: JWTPayload;
    try {
      claims = await verify(match[1]!, secret, 'HS256');
    } catch (error) {
      const reason = (error as Error).name === 'JwtTokenExpired' ? 'The token has expired.' : 'The token is invalid.';
      throw new ApiError('unauthorized', reason);
    }
    c.set('caller', callerFrom(claims));
    await next();
  });
