import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { type CatalogConfig, jobTypeCatalog } from '../../jobs/catalog.js';
import { MISFIRE_POLICIES, OVERLAP_POLICIES } from '../../jobs/job-policies.js';
import { jobTypeNames, jobTypes } from '../../jobs/registry.js';
import { int32 } from '../../lib/int32.js';
import type { AppEnv } from '../app-env.js';
import { AUTHENTICATED, problemResponses } from '../problem-responses.js';
import { rateLimitHeaders } from '../response-headers.js';
import { payloadSchemas } from './cron.schemas.js';

const common = {
  label: z
    .string()
    .max(100)
    .openapi({ description: 'A short human name for forms and lists.', example: 'Send an email' }),
  description: z.string().max(1000),
  payloadSchema: z.record(z.string(), z.unknown()).openapi({
    description:
      'JSON Schema (2020-12) of `payload` for this type, generated from the validation the service applies. A ' +
      'few rules it cannot express (e.g. the params a template needs) are checked on create and reported as ' +
      'field errors.',
  }),
  roles: z
    .array(z.enum(['user', 'admin']).openapi('Role'))
    .max(2)
    .openapi({ description: 'Who may create jobs of this type.' }),
  minIntervalSeconds: int32(1).openapi({
    description: 'The closest two fires of a job of this type may be; a cron firing more often is refused.',
    example: 60,
  }),
  defaults: z
    .object({
      retry: z.object({
        maxAttempts: int32(1).openapi({ description: 'Attempts per run, the first included.' }),
        backoffMs: int32(0).openapi({ description: 'Wait before the second attempt, doubled for each further one.' }),
      }),
      timeoutMs: int32(1).openapi({ description: 'An attempt running longer is cut off.' }),
      pauseAfterFailures: int32(0).openapi({
        description: 'Failed scheduled runs in a row after which the job pauses itself; 0 never.',
      }),
      overlap: z
        .enum(OVERLAP_POLICIES)
        .openapi({ description: "A new job's `overlap` when the request leaves it out." }),
      misfirePolicy: z
        .enum(MISFIRE_POLICIES)
        .openapi({ description: "A new job's `misfirePolicy` when the request leaves it out." }),
    })
    // Named, like the roles: one shape for every type's entry, so generated clients have one class of it.
    .openapi('JobTypeDefaults', {
      description: 'How runs of this type are executed, and what a new job gets unless it says otherwise.',
    }),
};

/**
 * One entry per type, told apart by `name`: its `example` has that type's payload schema, so a
 * typed client can prefill a typed payload from it (`SendEmailTypeInfo.example` is a SendEmailPayload).
 */
const typeInfos = jobTypes.map((t) =>
  z
    .object({
      name: z.literal(t.name).openapi({ description: 'The `type` of a job.' }),
      ...common,
      example: payloadSchemas.get(t.name)!,
    })
    .openapi(`${t.name[0]!.toUpperCase()}${t.name.slice(1)}TypeInfo`, {
      description: `The catalog entry of ${t.name}; \`example\` is a payload this caller may save as it is.`,
    }),
);
const JobTypeInfo = z
  .discriminatedUnion('name', typeInfos as unknown as [(typeof typeInfos)[number], ...(typeof typeInfos)[number][]])
  .openapi('JobTypeInfo');

const JobTypeList = z.object({ items: z.array(JobTypeInfo).max(jobTypeNames.length) }).openapi('JobTypeList', {
  example: {
    items: [
      {
        name: 'generateReport',
        label: 'Generate a run report',
        description: "Computes run statistics of the owner's jobs for a period and stores a report.",
        payloadSchema: {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          type: 'object',
          properties: {
            type: { type: 'string', enum: ['runs'] },
            period: { type: 'string', enum: ['day', 'week', 'month'] },
          },
          required: ['type', 'period'],
          additionalProperties: false,
        },
        example: { type: 'runs', period: 'week' },
        roles: ['user', 'admin'],
        minIntervalSeconds: 60,
        defaults: {
          retry: { maxAttempts: 3, backoffMs: 1000 },
          timeoutMs: 60000,
          pauseAfterFailures: 5,
          overlap: 'forbid',
          misfirePolicy: 'runOnce',
        },
      },
    ],
  },
});

export const listJobTypes = createRoute({
  method: 'get',
  path: '/job-types',
  operationId: 'listJobTypes',
  summary: 'List the job types you may use',
  description:
    'The catalog the app builds its forms from: for each type your role may create, its label, description, the ' +
    'JSON Schema of its payload with an example that validates, the minimum interval between fires, and the run ' +
    'defaults (retry, timeout, overlap, misfire).',
  tags: ['Cron jobs'],
  security: [{ bearerAuth: [] }],
  responses: {
    200: {
      description: 'The types, in a stable order.',
      headers: rateLimitHeaders,
      content: { 'application/json': { schema: JobTypeList } },
    },
    // Read from the registry and the configuration, but behind the rate limits like every route here.
    ...problemResponses(...AUTHENTICATED),
  },
});

/** Mounts GET /job-types on the authenticated cron router; the effective limits come from the configuration. */
export function registerJobTypeRoutes(router: OpenAPIHono<AppEnv>, config: CatalogConfig) {
  return router.openapi(listJobTypes, (c) => {
    // The registry types each entry's example loosely (a record); the catalog test and the
    // examples test check every example against its type's payload schema.
    const items = jobTypeCatalog(c.var.caller, config) as z.infer<typeof JobTypeList>['items'];
    return c.json({ items }, 200);
  });
}
