import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CronJobInput, JobTypeInfo } from '../generated/client.js';
import { jobTypes } from '../src/jobs/registry.js';
import { type Harness, startHarness } from './helpers/harness.js';

let h: Harness;
beforeAll(async () => {
  // A configured override must show in the catalog, as it applies to the runs.
  h = await startHarness({
    env: { CRON_MIN_INTERVAL_SECONDS: '120', JOB_TYPE_POLICIES: '{"sendEmail":{"maxAttempts":7,"timeoutMs":45000}}' },
  });
});
afterAll(() => h.stop());

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);

async function catalog(sub: string, admin = false): Promise<JobTypeInfo[]> {
  const { data, response } = await h.client(sub, { admin }).GET('/api/cron/job-types');
  expect(response.status).toBe(200);
  return data!.items;
}

describe('GET /api/cron/job-types', () => {
  it('lists the types the caller may use: users the user types, admins all of them', async () => {
    expect((await catalog('cat-user')).map((t) => t.name)).toEqual(['sendEmail', 'generateReport']);
    expect((await catalog('cat-admin', true)).map((t) => t.name)).toEqual(jobTypes.map((t) => t.name));
  });

  it('every example validates against its own JSON Schema, and the schema rejects a wrong payload', async () => {
    for (const type of await catalog('cat-admin', true)) {
      const validate = ajv.compile(type.payloadSchema);
      expect(validate(type.example), `${type.name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
      expect(validate({ ...type.example, notAField: 1 }), type.name).toBe(false);
      expect(validate({}), type.name).toBe(false);
    }
  });

  it('every example is accepted by the service as the payload of a new job', async () => {
    const admin = h.client('cat-creator', { admin: true });
    for (const type of await catalog('cat-creator', true)) {
      const body = {
        name: `from-catalog-${type.name}`,
        type: type.name,
        cron: '0 4 * * *',
        payload: type.example,
      } as CronJobInput;
      const { data, error } = await admin.POST('/api/cron/jobs', { body });
      expect(error, type.name).toBeUndefined();
      // The job gets the defaults the catalog announced.
      expect(data, type.name).toMatchObject({
        type: type.name,
        overlap: type.defaults.overlap,
        misfirePolicy: type.defaults.misfirePolicy,
      });
    }
  });

  it('publishes labels, roles, the effective minimum interval and run defaults, configuration included', async () => {
    const byName = Object.fromEntries((await catalog('cat-admin', true)).map((t) => [t.name, t]));
    expect(byName.sendEmail).toMatchObject({
      label: 'Send an email',
      roles: ['user', 'admin'],
      minIntervalSeconds: 120, // the service's rule, larger than the type's none
      defaults: {
        retry: { maxAttempts: 7, backoffMs: 5000 },
        timeoutMs: 45000,
        overlap: 'forbid',
        misfirePolicy: expect.any(String),
      },
    });
    expect(byName.purgeSessions).toMatchObject({
      roles: ['admin'],
      minIntervalSeconds: 3600,
      defaults: { retry: { maxAttempts: 2 }, timeoutMs: 600000 },
    });
    for (const type of Object.values(byName)) {
      expect(type.label.length, type.name).toBeGreaterThan(0);
      expect(type.description.length, type.name).toBeGreaterThan(0);
      const schema = type.payloadSchema as { $schema: string; type?: string; oneOf?: { type: string }[] };
      expect(schema.$schema, type.name).toBe('https://json-schema.org/draft/2020-12/schema');
      // An object, or one object per variant (sendEmail: one per template, each with its params).
      const objects = schema.oneOf ?? [schema];
      expect(objects.length, type.name).toBeGreaterThan(0);
      for (const variant of objects) expect(variant.type, type.name).toBe('object');
    }
  });

  it('a cron firing more often than the published minimum is refused', async () => {
    const [report] = (await catalog('cat-limits')).filter((t) => t.name === 'generateReport');
    const { response, error } = await h.client('cat-limits').POST('/api/cron/jobs', {
      body: { name: 'too-often', type: 'generateReport', cron: '* * * * *', payload: report!.example } as CronJobInput,
    });
    expect(report!.minIntervalSeconds).toBe(120);
    expect(response.status).toBe(400);
    expect(error!.errors!.map((e) => e.path)).toContain('cron');
  });

  it('needs a token', async () => {
    const res = await fetch(`${h.baseUrl}/api/cron/job-types`);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });
});
