import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodies, type Harness, startHarness } from './helpers/harness.js';

// The examples the spec and the catalog publish are true: each request example, sent by a normal
// user of a service with the default recipient rules, gets the documented success status, and the
// run-now example says what run-now really answers.

const spec = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
type Media = { example?: unknown; examples?: Record<string, { value: unknown }>; schema: { $ref?: string } };

/** Every example of a request body: the media type's own, its named ones, and its schema's. */
function requestExamples(media: Media): unknown[] {
  const schema = media.schema.$ref ? spec.components.schemas[media.schema.$ref.split('/').pop()!] : media.schema;
  return [
    ...(media.example === undefined ? [] : [media.example]),
    ...Object.values(media.examples ?? {}).map((e) => e.value),
    ...(schema.example === undefined ? [] : [schema.example]),
  ];
}

const withBodies = Object.entries(spec.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
  Object.entries(item)
    .filter(([, op]) => op.requestBody)
    .map(([method, op]) => ({
      path,
      method,
      success: Number(Object.keys(op.responses).find((s) => s.startsWith('2'))),
      examples: requestExamples(op.requestBody.content['application/json']),
    })),
);

let h: Harness;
beforeAll(async () => {
  // The default recipient rules: no allowed domain, only the caller's own address.
  h = await startHarness({ env: { EMAIL_ALLOWED_DOMAINS: '' } });
});
afterAll(() => h.stop());

describe('the published examples', () => {
  it('each request body example gets its documented status from a normal user', async () => {
    expect(withBodies.map((o) => `${o.method} ${o.path}`).sort()).toEqual([
      'patch /api/cron/jobs/{id}',
      'post /api/cron/jobs',
      'put /api/cron/jobs/{id}',
    ]);
    for (const { path, method, success, examples } of withBodies) {
      expect(examples.length, `${method} ${path}`).toBeGreaterThan(0);
      for (const [i, example] of examples.entries()) {
        // A job of the user's own to change, for the operations on one job.
        const user = `examples-${method}-${i}`;
        const api = h.client(user);
        const own = path.includes('{id}')
          ? (await api.POST('/api/cron/jobs', { body: bodies.generateReport('to change') })).data!.id
          : '';
        const res = await fetch(`${h.baseUrl}${path.replace('{id}', own)}`, {
          method: method.toUpperCase(),
          headers: { Authorization: `Bearer ${await h.token(user)}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(example),
        });
        expect(res.status, `${method} ${path} example ${i}: ${await res.clone().text()}`).toBe(success);
      }
    }
  });

  it("the catalog's examples can be saved as they are by the caller they were shown to", async () => {
    const cases = [
      { user: 'with-email', claims: { email: 'dana@corp.test' } },
      { user: 'no-email', claims: {} },
    ];
    for (const { user, claims } of cases) {
      const api = h.client(user, { claims });
      const { data } = await api.GET('/api/cron/job-types');
      for (const type of data!.items) {
        const created = await api.POST('/api/cron/jobs', {
          body: { name: `example ${type.name}`, type: type.name, cron: '0 8 * * *', payload: type.example } as never,
        });
        if (type.name === 'sendEmail' && user === 'no-email') {
          // Email is off for a caller with no address of their own and no allowed domain: the
          // refusal says so, as the catalog's description of the type does.
          expect(created.response.status).toBe(403);
          expect(created.error?.type).toBe('/problems/payload-not-allowed');
        } else {
          expect(created.response.status, `${user} ${type.name}: ${JSON.stringify(created.error)}`).toBe(201);
        }
      }
    }
    const withEmail = await h.client('with-email', { claims: { email: 'dana@corp.test' } }).GET('/api/cron/job-types');
    expect(withEmail.data!.items.find((t) => t.name === 'sendEmail')!.example).toMatchObject({ to: 'dana@corp.test' });
  });

  it("run-now's 202 example is what run-now answers: a manual run, queued", async () => {
    const example = spec.paths['/api/cron/jobs/{id}/run-now'].post.responses['202'].content['application/json'].example;
    const api = h.client('examples-run-now');
    const { data: job } = await api.POST('/api/cron/jobs', { body: bodies.generateReport() });
    const { data: run } = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    expect({ trigger: run!.trigger, status: run!.status }).toEqual({
      trigger: example.trigger,
      status: example.status,
    });
    expect(example).toMatchObject({ trigger: 'manual', status: 'queued', startedAt: null, attempts: 0 });
  });
});
