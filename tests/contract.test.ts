import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { validate } from '@scalar/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBLEMS, type ProblemCode, problemType } from '../src/lib/problem.js';
import { assertMatchesSpec } from './helpers/contract.js';
import { type Harness, startHarness } from './helpers/harness.js';

const committed = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
const operations = Object.entries(committed.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
  METHODS.filter((m) => item[m]).map((method) => ({ path, method, op: item[method] })),
);

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

describe('the contract', () => {
  it('the committed openapi.json and generated/ are what the routes produce now', async () => {
    const { stdout } = await promisify(execFile)('npx', ['tsx', 'scripts/generate.ts', '--check'], {
      timeout: 110_000,
    });
    expect(stdout).toContain('contract files are current');
  }, 120_000);

  it('the service serves exactly the committed spec', async () => {
    const served = (await (await fetch(`${h.baseUrl}/openapi.json`)).json()) as { openapi: string };
    expect(served).toEqual(committed);
    expect(served.openapi).toBe('3.1.0');
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const { valid, errors } = await validate(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
    expect(errors).toEqual([]);
    expect(valid).toBe(true);
  });

  it('documents every operation with an id, summary, tags, security and problem responses', () => {
    expect(operations.length).toBe(13);
    const ids = operations.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, method, op } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      expect(op.summary, where).toBeTruthy();
      expect(op.tags?.length, where).toBeGreaterThan(0);
      if (path.startsWith('/api/cron')) {
        expect(op.security, where).toEqual([{ bearerAuth: [] }]);
        expect(op.responses['401'], where).toBeDefined();
      }
      for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
        if (Number(status) >= 400)
          expect(Object.keys(response.content), `${where} ${status}`).toEqual(['application/problem+json']);
      }
    }
    expect(committed.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
  });

  it('documents on every authenticated operation what its middleware answers: 401, 429 with its headers, 503', () => {
    const authenticated = operations.filter(({ path }) => path.startsWith('/api/cron'));
    expect(authenticated.map(({ op }) => op.operationId)).toContain('listJobTypes');
    for (const { path, method, op } of authenticated) {
      const where = `${method.toUpperCase()} ${path}`;
      for (const code of ['unauthorized', 'rate-limited', 'unavailable'] as const)
        expect(op.responses[PROBLEMS[code].status]?.content['application/problem+json'].examples, where).toHaveProperty(
          code,
        );
      expect(Object.keys(op.responses['429'].headers).sort(), where).toEqual([
        'Access-Control-Allow-Origin',
        'RateLimit',
        'RateLimit-Policy',
        'Retry-After',
        'X-Request-Id',
      ]);
      // The rate limits are advertised on every answer that gets through them.
      for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
        if (Number(status) < 300)
          expect(Object.keys(response.headers ?? {}), `${where} ${status}`).toContain('RateLimit');
      }
    }
  });

  it('gives every operation a description and an example of every request body and response', () => {
    const schemaOf = (schema: { $ref?: string }) =>
      schema.$ref ? committed.components.schemas[schema.$ref.split('/').pop()!] : schema;
    const hasExample = (media: { example?: unknown; examples?: object; schema: { $ref?: string } }) =>
      media.example !== undefined ||
      Object.keys(media.examples ?? {}).length > 0 ||
      schemaOf(media.schema).example !== undefined;
    for (const { path, method, op } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      expect(op.description, where).toMatch(/\S{3}/);
      for (const [type, media] of Object.entries((op.requestBody?.content ?? {}) as Record<string, any>))
        expect(hasExample(media), `${where} request ${type}`).toBe(true);
      for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
        for (const [type, media] of Object.entries((response.content ?? {}) as Record<string, any>))
          expect(hasExample(media), `${where} ${status} ${type}`).toBe(true);
      }
    }
    expect(committed.components.securitySchemes.bearerAuth.description).toMatch(/sub/);
  });

  it("publishes each job type's payload schema as its own request variant", () => {
    const variants = committed.components.schemas.CronJobInput.oneOf.map((v: { $ref: string }) =>
      v.$ref.split('/').pop(),
    );
    expect(variants).toEqual(['SendEmailJob', 'PurgeSessionsJob', 'GenerateReportJob', 'CleanupOldAuditLogsJob']);
    // Each payload is a named schema, shared by its body variant and its catalog entry's example.
    expect(committed.components.schemas.PurgeSessionsJob.properties.payload).toEqual({
      $ref: '#/components/schemas/PurgeSessionsPayload',
    });
    expect(committed.components.schemas.PurgeSessionsTypeInfo.properties.example).toEqual({
      $ref: '#/components/schemas/PurgeSessionsPayload',
    });
    expect(committed.components.schemas.PurgeSessionsPayload.required).toEqual(['inactiveDays']);
    expect(committed.components.schemas.SendEmailJob.additionalProperties).toBe(false);
  });

  it('the contract checker rejects a body the spec does not describe', () => {
    expect(() => assertMatchesSpec('/api/cron/jobs/{id}', 'get', 200, 'application/json', { id: 1 })).toThrow(
      /does not match/,
    );
    expect(() => assertMatchesSpec('/api/cron/jobs/{id}', 'get', 418, 'application/json', {})).toThrow(
      /does not document/,
    );
    expect(() => assertMatchesSpec('/healthz', 'get', 200, 'application/json', { status: 'ok' })).not.toThrow();
  });

  it('renders the Scalar reference from a self-hosted bundle, with no CDN', async () => {
    const page = await fetch(`${h.baseUrl}/reference`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<script src="/reference/scalar.js">');
    expect(html).toContain('/openapi.json');
    expect(html).not.toMatch(/<script[^>]+src="https?:/);
    const bundle = await fetch(`${h.baseUrl}/reference/scalar.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    expect((await bundle.text()).length).toBeGreaterThan(1_000_000);
  });

  it('every problem type resolves to its description', async () => {
    for (const [code, { status, title }] of Object.entries(PROBLEMS)) {
      const res = await fetch(new URL(problemType(code as ProblemCode), h.baseUrl));
      const body = await res.json();
      assertMatchesSpec('/problems/{code}', 'get', res.status, res.headers.get('content-type'), body);
      expect(body).toMatchObject({
        type: `/problems/${code}`,
        status,
        title,
        description: expect.stringMatching(/\S/),
      });
    }
    const unknown = await fetch(`${h.baseUrl}/problems/teapot`);
    expect(unknown.status).toBe(400);
  });

  it('answers the health probes as documented', async () => {
    for (const path of ['/healthz', '/readyz'] as const) {
      const res = await fetch(`${h.baseUrl}${path}`);
      const body = await res.json();
      assertMatchesSpec(path, 'get', res.status, res.headers.get('content-type'), body);
      expect(body).toEqual({ status: 'ok' });
    }
  });
});
