import { randomUUID } from 'node:crypto';
import mongoose from 'mongoose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CronJob } from '../generated/client.js';
import { assertMatchesSpec } from './helpers/contract.js';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// A corpus of NoSQL operator-injection attempts (OWASP API8/API10 style), each sent by an
// attacker with a valid token of their own. Every one must be answered 4xx problem+json, none
// may change a stored job, and no answer may reveal anything of the victim's jobs.

let h: Harness;
const victim = `victim-${randomUUID().slice(0, 8)}`;
const attacker = `attacker-${randomUUID().slice(0, 8)}`;
let victimJobs: CronJob[];
let attackerJob: CronJob;

beforeAll(async () => {
  h = await startHarness();
  const api = h.client(victim);
  victimJobs = [];
  for (const body of [bodies.sendEmail('victim-secret-digest'), bodies.generateReport('victim-secret-report')]) {
    victimJobs.push((await api.POST('/api/cron/jobs', { body })).data!);
  }
  attackerJob = (await h.client(attacker).POST('/api/cron/jobs', { body: bodies.generateReport('attacker-own') }))
    .data!;
});
afterAll(() => h.stop());

type Attempt = {
  method: string;
  url: () => string;
  spec: string | null;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  admin?: boolean;
};

const job = () => bodies.sendEmail(`inj-${randomUUID().slice(0, 8)}`);
const mail = bodies.sendEmail().payload;
const post = (body: unknown): Attempt => ({
  method: 'POST',
  url: () => '/api/cron/jobs',
  spec: '/api/cron/jobs',
  body,
});
const patchOwn = (body: unknown): Attempt => ({
  method: 'PATCH',
  url: () => `/api/cron/jobs/${attackerJob.id}`,
  spec: '/api/cron/jobs/{id}',
  body,
});
const putOwn = (body: unknown): Attempt => ({
  method: 'PUT',
  url: () => `/api/cron/jobs/${attackerJob.id}`,
  spec: '/api/cron/jobs/{id}',
  body,
});
const list = (query: string, admin = false): Attempt => ({
  method: 'GET',
  url: () => `/api/cron/jobs?${query}`,
  spec: '/api/cron/jobs',
  admin,
});
const runs = (query: string): Attempt => ({
  method: 'GET',
  url: () => `/api/cron/jobs/${attackerJob.id}/runs?${query}`,
  spec: '/api/cron/jobs/{id}/runs',
});
const byId = (method: string, id: () => string, suffix = '', spec = `/api/cron/jobs/{id}${suffix}`): Attempt => ({
  method,
  url: () => `/api/cron/jobs/${id()}${suffix}`,
  spec,
  ...(method === 'PUT' ? { body: job() } : method === 'PATCH' ? { body: { enabled: false } } : {}),
});
const nested = (depth: number) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
};

const corpus: [label: string, attempt: Attempt][] = [
  // Operators where a string belongs, in the body.
  ['name {$ne: null}', post({ ...job(), name: { $ne: null } })],
  ['name {$gt: ""}', post({ ...job(), name: { $gt: '' } })],
  ['type {$in: [...]}', post({ ...job(), type: { $in: ['sendEmail', 'purgeSessions'] } })],
  ['cron {$regex: ".*"}', post({ ...job(), cron: { $regex: '.*' } })],
  ['timezone {$type: 2}', post({ ...job(), timezone: { $type: 2 } })],
  ['enabled {$exists: true}', post({ ...job(), enabled: { $exists: true } })],
  ['payload {$where: ...}', post({ ...job(), payload: { $where: 'sleep(5000) || true' } })],
  ['payload.to {$ne: null}', post({ ...job(), payload: { ...mail, to: { $ne: null } } })],
  ['payload.params {$gt: 1}', post({ ...job(), payload: { ...mail, params: { $gt: 1 } } })],
  ['payload.params.count {$inc: 1}', post({ ...job(), payload: { ...mail, params: { count: { $inc: 1 } } } })],
  ['a dotted payload key', post({ ...job(), payload: { ...mail, 'params.count': 5 } })],
  ['a dotted key deep in the payload', post({ ...job(), payload: { ...mail, params: { note: [{ 'a.b': 1 }] } } })],
  ['a $-key deep in an array', post({ ...job(), payload: { ...mail, params: { list: [[{ $expr: 1 }]] } } })],
  ['top-level $set', post({ ...job(), $set: { ownerId: victim } })],
  ['top-level $unset', post({ ...job(), $unset: { ownerId: 1 } })],
  [
    '__proto__ pollution',
    {
      method: 'POST',
      url: () => '/api/cron/jobs',
      spec: '/api/cron/jobs',
      rawBody: JSON.stringify(job()).replace(/^\{/, '{"__proto__":{"isAdmin":true},'),
    },
  ],
  ['constructor.prototype pollution', post({ ...job(), constructor: { prototype: { isAdmin: true } } })],
  ['nesting 40 levels deep', post({ ...job(), payload: { ...mail, params: { deep: nested(40) } } })],
  ['ownerId of the victim', post({ ...job(), ownerId: victim })],
  // Edits of the attacker's own job that try to reach further.
  ['PATCH name {$ne: null}', patchOwn({ name: { $ne: null } })],
  ['PATCH payload {$set: ...}', patchOwn({ payload: { $set: { to: 'x@evil.test' } } })],
  ['PATCH a dotted top-level key', patchOwn({ 'payload.to': 'x@evil.test' })],
  ['PATCH $rename', patchOwn({ $rename: { ownerId: 'owner' } })],
  ['PATCH ownerId {$ne: ""}', patchOwn({ ownerId: { $ne: '' } })],
  ['PUT payload $expr', putOwn({ ...job(), payload: { $expr: { $gt: ['$a', 1] } } })],
  ['PUT ownerId of the victim', putOwn({ ...job(), ownerId: victim })],
  // Query parameters as objects or arrays.
  ['?type[$ne]=x', list('type[$ne]=x')],
  ['?type twice', list('type=sendEmail&type=generateReport')],
  ['?ownerId[$ne]=attacker', list(`ownerId[$ne]=${attacker}`)],
  ['?ownerId[$regex]=.* as admin', list('ownerId[$regex]=.*', true)],
  ['?ownerId[]=victim as admin', list(`ownerId[]=${victim}`, true)],
  ['?enabled[$exists]=true', list('enabled[$exists]=true')],
  ['?cursor[$gt]=0…0', list(`cursor[$gt]=${'0'.repeat(24)}`)],
  ['?limit[$gt]=0', list('limit[$gt]=0')],
  ['?ownerId={"$ne":null} as a user', list(`ownerId=${encodeURIComponent('{"$ne":null}')}`)],
  ['?ownerId=victim as a user', list(`ownerId=${victim}`)],
  ['?type=$ne', list('type=%24ne')],
  ['?cursor={"$gt":""}', list(`cursor=${encodeURIComponent('{"$gt":""}')}`)],
  ['runs ?cursor[$ne]=x', runs('cursor[$ne]=x')],
  ['runs ?limit twice', runs('limit=1&limit=100')],
  // Ids that are not ids.
  ...(['GET', 'PUT', 'PATCH', 'DELETE'] as const).flatMap((method) => [
    [`${method} /jobs/{"$ne":null}`, byId(method, () => encodeURIComponent('{"$ne":null}'))] as [string, Attempt],
    [`${method} /jobs/$ne`, byId(method, () => '%24ne')] as [string, Attempt],
    [`${method} the victim's job`, byId(method, () => victimJobs[0]!.id)] as [string, Attempt],
  ]),
  ['GET /jobs/[object Object]', byId('GET', () => encodeURIComponent('[object Object]'))],
  ['GET a 5000-character id', byId('GET', () => 'a'.repeat(5000))],
  ['GET a well-formed id nobody has', byId('GET', () => '0'.repeat(24))],
  ['GET an id with a NUL byte', byId('GET', () => `${victimJobs[0]!.id}%00`)],
  ['GET an id with a path traversal', byId('GET', () => '..%2F..%2Fhealthz')],
  ['run-now {"$gt":""}', byId('POST', () => encodeURIComponent('{"$gt":""}'), '/run-now')],
  ["run-now the victim's job", byId('POST', () => victimJobs[0]!.id, '/run-now')],
  ["runs of the victim's job", byId('GET', () => victimJobs[1]!.id, '/runs')],
  ['runs of {"$ne":null}', byId('GET', () => encodeURIComponent('{"$ne":null}'), '/runs')],
  // Headers carrying operators.
  ['If-Match {"$ne":null}', { ...patchOwn({ enabled: false }), headers: { 'If-Match': '{"$ne":null}' } }],
  ['Idempotency-Key with spaces and braces', { ...post(job()), headers: { 'Idempotency-Key': '{ "$gt": "" }' } }],
  ['Idempotency-Key of 300 characters', { ...post(job()), headers: { 'Idempotency-Key': 'k'.repeat(300) } }],
];

/** What the attacker must not learn: the victim's owner id, job names and ids (bar an id they sent themselves). */
const secrets = (url: string) => [
  victim,
  ...victimJobs.flatMap((j) => [j.name, ...(url.includes(j.id) ? [] : [j.id])]),
];

describe(`NoSQL operator injection: ${corpus.length} attempts`, () => {
  it.each(corpus)('%s is answered 4xx problem+json revealing nothing', async (_label, attempt) => {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${await h.token(attacker, { admin: !!attempt.admin })}`,
      ...attempt.headers,
    };
    let body: string | undefined = attempt.rawBody;
    if (attempt.body !== undefined) body = JSON.stringify(attempt.body);
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(h.baseUrl + attempt.url(), {
      method: attempt.method,
      headers,
      ...(body !== undefined ? { body } : {}),
    });
    const text = await response.text();
    expect(response.status, text).toBeGreaterThanOrEqual(400);
    expect(response.status, text).toBeLessThan(500);
    expect(response.headers.get('Content-Type')).toMatch(/^application\/problem\+json/);
    if (attempt.spec)
      assertMatchesSpec(
        attempt.spec,
        attempt.method,
        response.status,
        response.headers.get('Content-Type'),
        JSON.parse(text),
      );
    for (const secret of secrets(attempt.url())) expect(text).not.toContain(secret);
  });

  it("afterwards the victim's jobs and the attacker's job are exactly as they were, and no job was added", async () => {
    const { data } = await h.client(victim).GET('/api/cron/jobs', {});
    expect(data!.items).toEqual(victimJobs);
    const own = await h.client(attacker).GET('/api/cron/jobs', {});
    expect(own.data!.items).toEqual([attackerJob]);
    expect(await h.scheduler.models.CronJob.countDocuments({})).toBe(3);
    expect(await h.scheduler.models.Run.countDocuments({})).toBe(0);
  });
});

describe('mongoose sanitizeFilter', () => {
  it('is on for the connection: an operator object in a filter is compared as a value, unless our code marks it trusted', async () => {
    expect(h.conn.get('sanitizeFilter')).toBe(true);
    const { CronJob } = h.scheduler.models;
    // What an unvalidated `ownerId` of {"$ne": ""} would have done, match every job, cannot
    // happen: it becomes {$eq: {$ne: ""}}, which is not even a string and is refused.
    await expect(CronJob.countDocuments({ ownerId: { $ne: '' } })).rejects.toThrow(/Cast to string failed/);
    expect(await CronJob.countDocuments({ ownerId: mongoose.trusted({ $ne: '' }) })).toBe(3);
    await expect(CronJob.find({ $where: 'true' }).lean()).rejects.toThrow(/\$where is not allowed with sanitizeFilter/);
  });
});
