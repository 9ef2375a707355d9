import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVELOPMENT_JWT_SECRET } from '../src/env.js';
import { assertMatchesSpec } from './helpers/contract.js';
import { type Harness, startHarness } from './helpers/harness.js';
import { type JwksServer, makeKey, type SigningKey, signWith, startJwksServer } from './helpers/jwks.js';

// Tokens from an identity provider's key set (JWKS) next to HS256, against the real service.

const ISSUER = 'https://id.test.local/';
const AUDIENCE = 'cron-jobs-api';
const SECRET = 'jwt-test-secret-of-at-least-32-chars!';
const TOLERANCE = 30;

let jwks: JwksServer;
let h: Harness;
let rsa: SigningKey;
let ec: SigningKey;

beforeAll(async () => {
  rsa = await makeKey('rsa-1', 'RS256');
  ec = await makeKey('ec-1', 'ES256');
  jwks = await startJwksServer([rsa, ec]);
  h = await startHarness({
    env: {
      JWKS_URL: jwks.url,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      JWT_SECRET: SECRET,
      JWT_CLOCK_TOLERANCE_SECONDS: String(TOLERANCE),
      // Every unknown kid fetches the set again, so a rotation needs no wait in the test.
      JWKS_REFETCH_COOLDOWN_MS: '0',
    },
  });
});
afterAll(async () => {
  await h?.stop();
  await jwks?.close();
});

const now = () => Math.floor(Date.now() / 1000);
const sub = () => `jwt-${randomUUID().slice(0, 8)}`;
const claims = (extra: Record<string, unknown> = {}) => ({
  sub: sub(),
  iss: ISSUER,
  aud: AUDIENCE,
  exp: now() + 300,
  ...extra,
});
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

/** GET /api/cron/jobs with the token; the answer checked against the spec. */
async function call(token: string) {
  const response = await fetch(`${h.baseUrl}/api/cron/jobs`, { headers: { Authorization: `Bearer ${token}` } });
  const body = (await response.json()) as { detail?: string };
  assertMatchesSpec('/api/cron/jobs', 'GET', response.status, response.headers.get('Content-Type'), body);
  return { status: response.status, body };
}

async function expect401(token: string, detail: RegExp) {
  const { status, body } = await call(token);
  expect(status).toBe(401);
  expect(body).toMatchObject({ type: '/problems/unauthorized', status: 401 });
  expect(body.detail).toMatch(detail);
}

/** An HS256 token over raw header and claims, signed with `key` as the HMAC secret. */
function hmacToken(header: object, payload: object, key: string | Buffer) {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

describe('key set tokens', () => {
  it.each(['RS256', 'ES256'] as const)('accepts %s from the key set, with iss and aud', async (alg) => {
    const { status, body } = await call(await signWith(alg === 'RS256' ? rsa : ec, claims()));
    expect(status).toBe(200);
    expect(body).toEqual({ items: [], nextCursor: null });
  });

  it('also accepts HS256 with the configured secret (iss and aud checked there too)', async () => {
    expect((await call(hmacToken({ alg: 'HS256', typ: 'JWT' }, claims(), SECRET))).status).toBe(200);
    await expect401(hmacToken({ alg: 'HS256', typ: 'JWT' }, claims({ aud: 'other-app' }), SECRET), /aud/);
  });

  it('the owner is the sub of the key set token: jobs created with it are listed for it', async () => {
    const owner = sub();
    const token = await signWith(rsa, claims({ sub: owner }));
    const created = await fetch(`${h.baseUrl}/api/cron/jobs`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        name: 'jwks job',
        type: 'generateReport',
        cron: '0 6 * * 1',
        payload: { type: 'runs', period: 'week' },
      }),
    });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ ownerId: owner });
  });

  it.each([
    ['a wrong issuer', { iss: 'https://evil.example/' }, /iss/],
    ['no issuer', { iss: undefined }, /iss/],
    ['a wrong audience', { aud: 'another-app' }, /aud/],
    ['no audience', { aud: undefined }, /aud/],
    ['no exp', { exp: undefined }, /exp/],
    ['no sub', { sub: undefined }, /sub/],
    ['an exp past the clock tolerance', { exp: now() - TOLERANCE - 30 }, /expired/],
    ['an nbf beyond the clock tolerance', { nbf: now() + TOLERANCE + 60 }, /nbf/],
  ])('refuses a token with %s', async (_label, extra, detail) => {
    await expect401(await signWith(rsa, claims(extra)), detail);
  });

  it('allows a small clock skew: exp a few seconds ago and nbf a few seconds ahead still pass', async () => {
    expect((await call(await signWith(rsa, claims({ exp: now() - 5, nbf: now() + 5 })))).status).toBe(200);
  });

  it('refuses a token signed by a key outside the set that names a key inside it (wrong key)', async () => {
    const stranger = await makeKey(rsa.kid, 'RS256');
    await expect401(await signWith(stranger, claims()), /signature/);
  });

  it('refuses an unknown kid after looking the set up again', async () => {
    const before = jwks.fetches();
    await expect401(await signWith(await makeKey('nobody', 'RS256'), claims()), /key/i);
    expect(jwks.fetches()).toBeGreaterThan(before);
  });

  it('refuses algorithms outside RS256/ES256/HS256 even from a listed key', async () => {
    const { generateKeyPair, SignJWT } = await import('jose');
    for (const alg of ['RS384', 'PS256', 'ES384']) {
      const { privateKey } = await generateKeyPair(alg);
      const token = await new SignJWT(claims()).setProtectedHeader({ alg, kid: rsa.kid }).sign(privateKey);
      await expect401(token, /alg/);
    }
  });

  it('refuses alg "none" (an unsigned token claiming admin)', async () => {
    await expect401(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims({ role: 'admin' }))}.`, /alg|invalid/);
  });

  it('refuses algorithm confusion: HS256 signed with the public key as the HMAC secret', async () => {
    const { createPublicKey } = await import('node:crypto');
    const pem = createPublicKey({ key: rsa.publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    for (const secret of [pem, JSON.stringify(rsa.publicJwk)]) {
      await expect401(
        hmacToken({ alg: 'HS256', typ: 'JWT', kid: rsa.kid }, claims({ role: 'admin' }), secret),
        /signature/,
      );
    }
  });
});

describe('key rotation', () => {
  it('a new kid is fetched when it first appears; a key removed from the set stops working', async () => {
    const oldKey = await makeKey(`old-${randomUUID().slice(0, 6)}`, 'RS256');
    const newKey = await makeKey(`new-${randomUUID().slice(0, 6)}`, 'ES256');
    jwks.publish([rsa, ec, oldKey]);
    expect((await call(await signWith(oldKey, claims()))).status).toBe(200);

    // The provider rotates: the old key goes, a new one comes.
    jwks.publish([rsa, ec, newKey]);
    const before = jwks.fetches();
    expect((await call(await signWith(newKey, claims()))).status).toBe(200);
    expect(jwks.fetches()).toBe(before + 1);
    await expect401(await signWith(oldKey, claims()), /key/i);
  });

  it('an identity provider that fails answers 503 (not 401) for a key the service has not seen', async () => {
    const unseen = await makeKey(`unseen-${randomUUID().slice(0, 6)}`, 'RS256');
    jwks.failing(true);
    try {
      const { status, body } = await call(await signWith(unseen, claims()));
      expect(status).toBe(503);
      expect(body).toMatchObject({ type: '/problems/unavailable', detail: expect.stringMatching(/signing keys/) });
    } finally {
      jwks.failing(false);
    }
  });
});

describe('a service configured with JWKS_URL and no JWT_SECRET', () => {
  it('refuses HS256 tokens signed with the development secret', async () => {
    const keysOnly = await startHarness({ env: { JWKS_URL: jwks.url, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE } });
    try {
      expect(keysOnly.config.JWT_SECRET).toBeUndefined();
      const forged = hmacToken({ alg: 'HS256', typ: 'JWT' }, claims({ role: 'admin' }), DEVELOPMENT_JWT_SECRET);
      const response = await fetch(`${keysOnly.baseUrl}/api/cron/jobs`, {
        headers: { Authorization: `Bearer ${forged}` },
      });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { detail: string }).detail).toMatch(/alg/);
      const good = await fetch(`${keysOnly.baseUrl}/api/cron/jobs`, {
        headers: { Authorization: `Bearer ${await signWith(rsa, claims())}` },
      });
      expect(good.status).toBe(200);
    } finally {
      await keysOnly.stop();
    }
  });
});
