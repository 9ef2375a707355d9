import { createRoute, type z } from '@hono/zod-openapi';
import { idempotent } from '../idempotency.middleware.js';
import { jsonBody } from '../json-body.js';
import { plainQuery } from '../plain-query.js';
import { AUTHENTICATED, problemResponses } from '../problem-responses.js';
import { rateLimit } from '../rate-limit.middleware.js';
import { etagHeader, rateLimitHeaders, replayedHeader } from '../response-headers.js';
import { createdJobLinks, queuedRunLinks } from './cron.links.js';
import {
  CronJob,
  CronJobInput,
  CronJobPage,
  CronJobPatch,
  CronPreview,
  CronPreviewQuery,
  exampleQueuedRun,
  IdempotencyKeyHeader,
  IfMatchHeader,
  ListJobsQuery,
  ListRunsQuery,
  ObjectIdParam,
  Run,
  RunPage,
} from './cron.schemas.js';

const tags = ['Cron jobs'];
const security = [{ bearerAuth: [] }];
const json = <T extends z.ZodType>(
  schema: T,
  description: string,
  headers: Record<string, { description: string; schema: object; example: string }> = {},
  example?: unknown,
) => ({
  description,
  headers: { ...rateLimitHeaders, ...headers },
  content: { 'application/json': { schema, ...(example === undefined ? {} : { example }) } },
});
const body = <T extends z.ZodType>(schema: T) => ({ required: true, content: { 'application/json': { schema } } });

export const create = createRoute({
  method: 'post',
  path: '/jobs',
  operationId: 'createJob',
  middleware: [jsonBody, idempotent] as const,
  summary: 'Create a job',
  description:
    'Validates the type (and that your role may use it), the cron, the timezone and the payload, stores the job ' +
    'and schedules it. Server-owned fields (`ownerId`, `status`, `nextRunAt`...) in the body are refused. At ' +
    'most `MAX_JOBS_PER_OWNER` (50) jobs per owner. With an `Idempotency-Key`, a retry of the same request ' +
    'returns the first response instead of creating a second job.',
  tags,
  security,
  request: { headers: IdempotencyKeyHeader, body: body(CronJobInput) },
  responses: {
    201: {
      ...json(CronJob, 'The job, scheduled unless created paused.', { ...etagHeader, ...replayedHeader }),
      links: createdJobLinks,
    },
    ...problemResponses(
      'invalid-request',
      'forbidden',
      'payload-not-allowed',
      'conflict',
      'job-limit-reached',
      'idempotency-key-in-use',
      'payload-too-large',
      'unsupported-media-type',
      'idempotency-key-reused',
      ...AUTHENTICATED,
    ),
  },
});

export const list = createRoute({
  method: 'get',
  path: '/jobs',
  operationId: 'listJobs',
  middleware: [plainQuery] as const,
  summary: 'List jobs',
  description:
    "Your jobs, oldest first, a page at a time (at most 100). Admins see every owner's and may filter by " +
    '`ownerId`. Each parameter may be given once, as a plain string.',
  tags,
  security,
  request: { query: ListJobsQuery },
  responses: {
    200: json(CronJobPage, 'One page of jobs.'),
    ...problemResponses('invalid-request', 'forbidden', ...AUTHENTICATED),
  },
});

export const get = createRoute({
  method: 'get',
  path: '/jobs/{id}',
  operationId: 'getJob',
  summary: 'Get a job',
  description:
    "One of your jobs (any job for an admin) with its schedule, state and next fire. Another owner's job is a 404, " +
    'exactly like a missing one.',
  tags,
  security,
  request: { params: ObjectIdParam },
  responses: {
    200: json(CronJob, 'The job.', etagHeader),
    ...problemResponses('invalid-request', 'not-found', ...AUTHENTICATED),
  },
});

export const replace = createRoute({
  method: 'put',
  path: '/jobs/{id}',
  operationId: 'replaceJob',
  middleware: [jsonBody] as const,
  summary: 'Replace a job',
  description:
    'Re-validates everything and reschedules. The run in progress, if any, is not interrupted. With `If-Match`, ' +
    'only if the job is still the version you read (else 412).',
  tags,
  security,
  request: { params: ObjectIdParam, headers: IfMatchHeader, body: body(CronJobInput) },
  responses: {
    200: json(CronJob, 'The job as replaced.', etagHeader),
    ...problemResponses(
      'invalid-request',
      'forbidden',
      'payload-not-allowed',
      'not-found',
      'conflict',
      'precondition-failed',
      'payload-too-large',
      'unsupported-media-type',
      ...AUTHENTICATED,
    ),
  },
});

export const patch = createRoute({
  method: 'patch',
  path: '/jobs/{id}',
  operationId: 'updateJob',
  middleware: [jsonBody] as const,
  summary: 'Change part of a job; pause or resume it',
  description:
    '`{"enabled": false}` pauses the job (no fires, `nextRunAt` null); `{"enabled": true}` resumes it from the ' +
    'next slot, without running missed ones. With `If-Match`, only if the job is still the version you read ' +
    '(else 412).',
  tags,
  security,
  request: { params: ObjectIdParam, headers: IfMatchHeader, body: body(CronJobPatch) },
  responses: {
    200: json(CronJob, 'The job as changed.', etagHeader),
    ...problemResponses(
      'invalid-request',
      'forbidden',
      'payload-not-allowed',
      'not-found',
      'conflict',
      'precondition-failed',
      'payload-too-large',
      'unsupported-media-type',
      ...AUTHENTICATED,
    ),
  },
});

export const remove = createRoute({
  method: 'delete',
  path: '/jobs/{id}',
  operationId: 'deleteJob',
  summary: 'Delete a job',
  description:
    'Unschedules the job (queued manual runs included) and deletes it. Its run history is kept. With `If-Match`, ' +
    'only if the job is still the version you read (else 412).',
  tags,
  security,
  request: { params: ObjectIdParam, headers: IfMatchHeader },
  responses: {
    204: { description: 'Deleted.', headers: rateLimitHeaders },
    ...problemResponses('invalid-request', 'not-found', 'precondition-failed', ...AUTHENTICATED),
  },
});

export const runNow = createRoute({
  method: 'post',
  path: '/jobs/{id}/run-now',
  operationId: 'runJobNow',
  middleware: [rateLimit('run-now'), idempotent] as const,
  summary: 'Run a job now',
  description:
    'Queues one manual run, also for a paused job. Follow it with `GET /jobs/{id}/runs`. Limited more strictly ' +
    'than the other operations (`RATE_LIMIT_RUN_NOW_PER_USER`). With an `Idempotency-Key`, a retry returns the ' +
    'first run instead of queueing another.',
  tags,
  security,
  request: { params: ObjectIdParam, headers: IdempotencyKeyHeader },
  responses: {
    202: { ...json(Run, 'The queued run.', replayedHeader, exampleQueuedRun), links: queuedRunLinks },
    ...problemResponses(
      'invalid-request',
      'not-found',
      'conflict',
      'idempotency-key-in-use',
      'idempotency-key-reused',
      ...AUTHENTICATED,
    ),
  },
});

export const listRuns = createRoute({
  method: 'get',
  path: '/jobs/{id}/runs',
  operationId: 'listJobRuns',
  middleware: [plainQuery] as const,
  summary: "List a job's runs",
  description:
    'Newest first: scheduled and manual runs with their slot, start, end, duration, status, error and result.',
  tags,
  security,
  request: { params: ObjectIdParam, query: ListRunsQuery },
  responses: {
    200: json(RunPage, 'One page of runs.'),
    ...problemResponses('invalid-request', 'not-found', ...AUTHENTICATED),
  },
});

export const preview = createRoute({
  method: 'get',
  path: '/preview',
  operationId: 'previewCron',
  middleware: [plainQuery] as const,
  summary: 'Preview the fires of a cron',
  description:
    'The next `count` fires of `cron` in `timezone`, exactly as a job with them would fire, each as UTC and as ' +
    'local time with its offset, with a marker on fires a DST change shifted or merged, and the cron in words. ' +
    'The same rules as creating a job apply (seconds field, minimum interval, and with `type` the minimum ' +
    'interval of that type); nothing is stored.',
  tags,
  security,
  request: { query: CronPreviewQuery },
  responses: {
    200: json(CronPreview, 'The next fires.'),
    // Pure computation, but behind authentication and the rate limits (AUTHENTICATED).
    ...problemResponses('invalid-request', ...AUTHENTICATED),
  },
});
