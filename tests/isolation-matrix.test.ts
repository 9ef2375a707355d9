import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertMatchesSpec } from './helpers/contract.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';
import { type JwksServer, makeKey, type SigningKey, signWith, startJwksServer } from './helpers/jwks.js';

/**
 * OWASP API1/API5: every operation of the spec x every kind of caller, each cell with the
 * exact status it must get. The operations come from openapi/openapi.json (which `generate
 * --check` keeps equal to the routes), so a new route is in the matrix the moment it exists:
 * its cells follow the rules below from its `security` and its path, its request body and
 * required query parameters are the examples their schemas publish, and a route the rules do not fit fails here until it gets a row
 * in SPECIAL_CASES.
 */

const spec = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));

const ISSUER = 'https://id.matrix.local/';
const AUDIENCE = 'cron-jobs-api';

const IDENTITIES = [
  'owner',
  'another user',
  'admin',
  'no token',
  'expired token',
  'wrong audience',
  'wrong key',
] as const;
type Identity = (typeof IDENTITIES)[number];
const REFUSED: Identity[] = ['no token', 'expired token', 'wrong audience', 'wrong key'];

interface Operation {
  method: string;
  path: string;
  operationId: string;
  secured: boolean;
  success: number;
  /** The path holds a job id: the cell works on a job the owner created for it. */
  onJob: boolean;
  body?: unknown;
  query?: Record<string, string>;
}

const resolve = (schema: { $ref?: string }): Record<string, unknown> =>
  schema.$ref ? spec.components.schemas[schema.$ref.split('/').pop()!] : (schema as Record<string, unknown>);

/** A request body for the operation: the example its schema publishes. */
function exampleBody(op: {
  operationId: string;
  requestBody?: { content: Record<string, { schema: { $ref?: string }; example?: unknown }> };
}) {
  if (!op.requestBody) return undefined;
  const media = op.requestBody.content['application/json'];
  const example = media?.example ?? (media && resolve(media.schema).example);
  if (example === undefined)
    throw new Error(
      `${op.operationId}: its JSON body schema publishes no example; add one so the isolation matrix can call it`,
    );
  return example;
}

/** Path parameters other than the job id, from their schema's example or first enum value. */
function fillPath(
  path: string,
  params: { name: string; in: string; schema: { example?: string; enum?: string[] } }[] = [],
) {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (name === 'id') return '{id}';
    const schema = params.find((p) => p.in === 'path' && p.name === name)?.schema ?? {};
    const value = schema.example ?? schema.enum?.[0];
    if (value === undefined) throw new Error(`${path}: path parameter ${name} has no example or enum to call it with`);
    return value;
  });
}

/** Required query parameters, from their own example, else their schema's example or first enum value. */
function requiredQuery(
  operationId: string,
  params: {
    name: string;
    in: string;
    required?: boolean;
    example?: unknown;
    schema: { example?: unknown; enum?: unknown[] };
  }[] = [],
) {
  const required = params.filter((p) => p.in === 'query' && p.required);
  if (required.length === 0) return undefined;
  return Object.fromEntries(
    required.map((p) => {
      const value = p.example ?? p.schema.example ?? p.schema.enum?.[0];
      if (value === undefined)
        throw new Error(`${operationId}: required query parameter ${p.name} has no example or enum to call it with`);
      return [p.name, String(value)];
    }),
  );
}

const operations: Operation[] = Object.entries(spec.paths as Record<string, Record<string, any>>).flatMap(
  ([path, item]) =>
    Object.entries(item).map(([method, op]) => ({
      method: method.toUpperCase(),
      path: fillPath(path, op.parameters),
      operationId: op.operationId,
      secured: (op.security ?? spec.security ?? []).length > 0,
      success: Math.min(
        ...Object.keys(op.responses)
          .map(Number)
          .filter((s) => s >= 200 && s < 300),
      ),
      onJob: /\{id\}/.test(path),
      body: exampleBody(op),
      query: requiredQuery(op.operationId, op.parameters),
    })),
);

/**
 * Variants the default rules do not produce: admin-only filters and admin-only job types are
 * 403 for users (OWASP API5). Each is a full row, invalid tokens included.
 */
const SPECIAL_CASES: (Operation & { label: string; expected: Partial<Record<Identity, number>> })[] = [
  {
    ...operations.find((o) => o.operationId === 'listJobs')!,
    label: 'listJobs?ownerId=<the owner>',
    query: { ownerId: '<owner>' },
    expected: { owner: 200, 'another user': 403, admin: 200 },
  },
  {
    ...operations.find((o) => o.operationId === 'createJob')!,
    label: 'createJob of the admin-only type purgeSessions',
    body: bodies.purgeSessions('matrix purge'),
    expected: { owner: 403, 'another user': 403, admin: 201 },
  },
];

/** The rule for one cell of a plain operation. */
function expectedStatus(op: Operation, who: Identity): number {
  if (!op.secured) return op.success;
  if (REFUSED.includes(who)) return 401;
  // Another user's request on the owner's job: the job does not exist for them.
  if (who === 'another user' && op.onJob) return 404;
  return op.success;
}

const rows: { label: string; op: Operation; who: Identity; status: number }[] = [
  ...operations.flatMap((op) =>
    IDENTITIES.map((who) => ({ label: `${op.method} ${op.path}`, op, who, status: expectedStatus(op, who) })),
  ),
  ...SPECIAL_CASES.flatMap((c) =>
    IDENTITIES.map((who) => ({
      label: c.label,
      op: c,
      who,
      status: c.expected[who] ?? (REFUSED.includes(who) ? 401 : NaN),
    })),
  ),
];

let jwks: JwksServer;
let h: Harness;
let key: SigningKey;
let outsider: SigningKey;

beforeAll(async () => {
  key = await makeKey('matrix-rsa', 'RS256');
  // Not in the set, but claiming a kid that is.
  outsider = await makeKey('matrix-rsa', 'RS256');
  jwks = await startJwksServer([key]);
  // Production-like: key set tokens only, issuer and audience checked.
  h = await startHarness({ env: { JWKS_URL: jwks.url, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE } });
});
afterAll(async () => {
  await h?.stop();
  await jwks?.close();
});

async function authorization(who: Identity, owner: string): Promise<string | undefined> {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: owner, iss: ISSUER, aud: AUDIENCE, exp: now + 300 };
  switch (who) {
    case 'owner':
      return signWith(key, claims);
    case 'another user':
      return signWith(key, { ...claims, sub: `${owner}-other` });
    case 'admin':
      return signWith(key, { ...claims, sub: `${owner}-admin`, role: 'admin' });
    case 'no token':
      return undefined;
    case 'expired token':
      return signWith(key, { ...claims, exp: now - 3600 });
    case 'wrong audience':
      return signWith(key, { ...claims, aud: 'another-app' });
    case 'wrong key':
      return signWith(outsider, claims);
  }
}

async function send(method: string, path: string, token: string | undefined, body?: unknown) {
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(`${h.baseUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { response, body: text ? JSON.parse(text) : undefined };
}

describe('isolation matrix', () => {
  it('covers every operation of the spec with every identity', () => {
    const ids = new Set(rows.map((r) => r.op.operationId));
    const inSpec = Object.values(spec.paths as Record<string, Record<string, { operationId: string }>>).flatMap(
      (item) => Object.values(item).map((o) => o.operationId),
    );
    expect([...ids].sort()).toEqual([...new Set(inSpec)].sort());
    expect(rows.filter((r) => Number.isNaN(r.status))).toEqual([]);
    expect(rows.length).toBe((operations.length + SPECIAL_CASES.length) * IDENTITIES.length);
  });

  it.each(rows.map((r) => [r.label, r.who, r.status, r] as const))(
    '%s as %s -> %i',
    async (_label, who, status, row) => {
      const owner = `matrix-${randomUUID().slice(0, 8)}`;
      const ownerToken = (await authorization('owner', owner))!;
      let path = row.op.path;
      let before: { id: string } | undefined;
      if (row.op.onJob) {
        const created = await send('POST', '/api/cron/jobs', ownerToken, bodies.sendEmail('matrix job'));
        expect(created.response.status).toBe(201);
        before = created.body;
        path = path.replace('{id}', created.body.id);
      }
      const query = row.op.query
        ? `?${new URLSearchParams(Object.entries(row.op.query).map(([k, v]) => [k, v.replace('<owner>', owner)] as [string, string]))}`
        : '';

      const { response, body } = await send(
        row.op.method,
        `${path}${query}`,
        await authorization(who, owner),
        row.op.body,
      );
      expect({ status: response.status, type: body?.type }).toMatchObject({ status });
      const templated = Object.keys(spec.paths).find((p) =>
        new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`).test(path),
      )!;
      assertMatchesSpec(templated, row.op.method, response.status, response.headers.get('Content-Type'), body);

      // A refused call changes nothing: the owner still sees the job exactly as it was.
      if (before && status >= 400) {
        const after = await send('GET', `/api/cron/jobs/${before.id}`, ownerToken);
        expect(after.body).toEqual(before);
      }
    },
  );
});
