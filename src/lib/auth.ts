import { createSecretKey } from 'node:crypto';
import { createMiddleware } from 'hono/factory';
import { createRemoteJWKSet, errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { Env } from '../env.js';
import { ApiError } from './problem.js';

export interface Caller {
  /** The `sub` claim: the owner id of the caller's jobs. */
  id: string;
  isAdmin: boolean;
  /**
   * The `email` claim, unless the token says it is unverified (`email_verified: false`); sendEmail
   * may always write to it.
   */
  email?: string;
}

export type AuthVariables = { caller: Caller };

export type AuthConfig = Pick<
  Env,
  'JWT_SECRET' | 'JWKS_URL' | 'JWT_ISSUER' | 'JWT_AUDIENCE' | 'JWT_CLOCK_TOLERANCE_SECONDS' | 'JWKS_REFETCH_COOLDOWN_MS'
>;

/** Asymmetric algorithms accepted from the key set; HS256 only ever with our own secret. */
const JWKS_ALGORITHMS = ['RS256', 'ES256'];

/** The key set could not be fetched or read: the identity provider's trouble, not the token's. */
class KeySetUnavailable extends Error {}

// Key-set answers that are about the token (its `kid` or `alg` matches no key), not the server.
const TOKEN_KEY_MISMATCH = new Set([errors.JWKSNoMatchingKey.code, errors.JWKSMultipleMatchingKeys.code]);

/** The longest `sub` accepted: it becomes `ownerId`, which the spec bounds. */
export const MAX_SUBJECT_LENGTH = 255;

function callerFrom(claims: JWTPayload): Caller {
  if (typeof claims.sub !== 'string' || claims.sub.length === 0) {
    throw new ApiError('unauthorized', 'The token has no subject (sub) claim.');
  }
  // The owner id of every job the caller makes: bounded like every text the API answers with.
  if (claims.sub.length > MAX_SUBJECT_LENGTH) {
    throw new ApiError('unauthorized', `The token's subject (sub) is over ${MAX_SUBJECT_LENGTH} characters.`);
  }
  const roles = Array.isArray(claims.roles) ? claims.roles : [];
  const email = typeof claims.email === 'string' && claims.email_verified !== false ? claims.email : undefined;
  return { id: claims.sub, isAdmin: claims.role === 'admin' || roles.includes('admin'), ...(email ? { email } : {}) };
}

/** Why a token was refused, in words a client can act on (jose's messages name the claim). */
function refusal(error: unknown): ApiError {
  if (error instanceof errors.JWTExpired) return new ApiError('unauthorized', 'The token has expired.');
  if (error instanceof errors.JWTClaimValidationFailed) {
    return new ApiError('unauthorized', `The token is invalid: ${error.message} (claim "${error.claim}").`);
  }
  if (error instanceof KeySetUnavailable) {
    // Not the caller's fault, so not a 401 that would make the app log its user out.
    return new ApiError('unavailable', 'The signing keys cannot be fetched from the identity provider; retry shortly.');
  }
  if (error instanceof errors.JOSEError) return new ApiError('unauthorized', `The token is invalid: ${error.message}.`);
  return new ApiError('unauthorized', 'The token is invalid.');
}

/**
 * Verifies a bearer token and says who sent it. HS256 with JWT_SECRET (development, tests, a
 * service of our own); RS256/ES256 with the JWKS_URL key set, the key chosen by `kid` and the
 * set fetched again when a new `kid` shows up (key rotation, at most once per cooldown).
 *
 * The algorithm list is checked before any key is chosen, so `alg: none` and anything else
 * unlisted never reach a key; and each algorithm family has its own key source, so an RS256
 * public key can never be used as an HS256 secret (algorithm confusion). `exp` and `sub` must be
 * present; `iss` and `aud` must match when configured; exp/nbf allow a small clock skew.
 */
export function createTokenVerifier(config: AuthConfig): (token: string) => Promise<Caller> {
  // A KeyObject made once: given raw bytes, jose imports a Web Crypto key on every verification,
  // which was a tenth of the API's CPU per authenticated request (bench/api.ts, --cpu-prof).
  const secret = config.JWT_SECRET ? createSecretKey(Buffer.from(config.JWT_SECRET, 'utf8')) : undefined;
  // Lazy: nothing is fetched until the first asymmetric token arrives.
  const keySet = config.JWKS_URL
    ? createRemoteJWKSet(new URL(config.JWKS_URL), {
        cooldownDuration: config.JWKS_REFETCH_COOLDOWN_MS,
        timeoutDuration: 5_000,
      })
    : undefined;
  const algorithms = [...(secret ? ['HS256'] : []), ...(keySet ? JWKS_ALGORITHMS : [])];
  const key: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === 'HS256' && secret) return secret;
    if (keySet && JWKS_ALGORITHMS.includes(header.alg)) {
      try {
        return await keySet(header, token);
      } catch (error) {
        // Unreachable, timed out, not 200, not a key set (jose's JOSEError, JWKSTimeout,
        // JWKSInvalid, fetch's TypeError): the provider's trouble. No key for this kid: the token's.
        if (error instanceof errors.JOSEError && TOKEN_KEY_MISMATCH.has(error.code)) throw error;
        throw new KeySetUnavailable('key set unavailable', { cause: error });
      }
    }
    // Unreachable while `algorithms` holds: jose refuses unlisted algorithms before asking.
    throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
  };
  return async (token) => {
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, key, {
        algorithms,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: config.JWT_CLOCK_TOLERANCE_SECONDS,
        ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
        ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
      }));
    } catch (error) {
      throw refusal(error);
    }
    return callerFrom(claims);
  };
}

/** Bearer JWT on every request of the router; the caller lands in `c.var.caller`. */
export const requireAuth = (config: AuthConfig) => {
  const verify = createTokenVerifier(config);
  return createMiddleware<{ Variables: AuthVariables }>(async (c, next) => {
    const match = c.req.header('Authorization')?.match(/^Bearer\s+(\S+)$/i);
    if (!match) throw new ApiError('unauthorized', 'Send an Authorization: Bearer <token> header.');
    c.set('caller', await verify(match[1]!));
    await next();
  });
};
