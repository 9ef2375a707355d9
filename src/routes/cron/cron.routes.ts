import { createRoute, z } from '@hono/zod-openapi';
import { jsonBody } from '../json-body.js';
import { problemResponses } from '../problem-responses.js';
import { createdJobLinks, queuedRunLinks } from './cron.links.js';
import {
  CronJob,
  CronJobInput,
  CronJobPage,
  CronJobPatch,
  ListJobsQuery,
  ListRunsQuery,
  ObjectIdParam,
  Run,
  RunPage,
} from './cron.schemas.js';

const tags = ['Cron jobs'];
const security = [{ bearerAuth: [] }];
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });
const body = <T extends z.ZodType>(schema: T) => ({ required: true, content: { 'application/json': { schema } } });

// Every authenticated route may also answer 401, 503 (database unreachable) and 500.
const always = ['unauthorized', 'unavailable'] as const;

export const create = createRoute({
  method: 'post',
  path: '/jobs',
  operationId: 'createJob',
  middleware: [jsonBody] as const,
  summary: 'Create a job',
  description: 'Validates the type (and that your role may use it), the cron, the timezone and the payload, stores the job and schedules it.',
  tags,
  security,
  request: { body: body(CronJobInput) },
  responses: {
    201: { ...json(CronJob, 'The job, scheduled unless created paused.'), links: createdJobLinks },
    ...problemResponses('invalid-request', 'forbidden', 'conflict', 'payload-too-large', 'unsupported-media-type', ...always),
  },
});

export const list = createRoute({
  method: 'get',
  path: '/jobs',
  operationId: 'listJobs',
  summary: 'List jobs',
  description: 'Your jobs, oldest first, a page at a time. Admins see every owner\'s and may filter by `ownerId`.',
  tags,
  security,
  request: { query: ListJobsQuery },
  responses: {
    200: json(CronJobPage, 'One page of jobs.'),
    ...problemResponses('invalid-request', 'forbidden', ...always),
  },
});

export const get = createRoute({
  method: 'get',
  path: '/jobs/{id}',
  operationId: 'getJob',
  summary: 'Get a job',
  tags,
  security,
  request: { params: ObjectIdParam },
  responses: {
    200: json(CronJob, 'The job.'),
    ...problemResponses('invalid-request', 'not-found', ...always),
  },
});

export const replace = createRoute({
  method: 'put',
  path: '/jobs/{id}',
  operationId: 'replaceJob',
  middleware: [jsonBody] as const,
  summary: 'Replace a job',
  description: 'Re-validates everything and reschedules. The run in progress, if any, is not interrupted.',
  tags,
  security,
  request: { params: ObjectIdParam, body: body(CronJobInput) },
  responses: {
    200: json(CronJob, 'The job as replaced.'),
    ...problemResponses('invalid-request', 'forbidden', 'not-found', 'conflict', 'payload-too-large', 'unsupported-media-type', ...always),
  },
});

export const patch = createRoute({
  method: 'patch',
  path: '/jobs/{id}',
  operationId: 'updateJob',
  middleware: [jsonBody] as const,
  summary: 'Change part of a job; pause or resume it',
  description: '`{"enabled": false}` pauses the job (no fires, `nextRunAt` null); `{"enabled": true}` resumes it from the next slot, without running missed ones.',
  tags,
  security,
  request: { params: ObjectIdParam, body: body(CronJobPatch) },
  responses: {
    200: json(CronJob, 'The job as changed.'),
    ...problemResponses('invalid-request', 'forbidden', 'not-found', 'conflict', 'payload-too-large', 'unsupported-media-type', ...always),
  },
});

export const remove = createRoute({
  method: 'delete',
  path: '/jobs/{id}',
  operationId: 'deleteJob',
  summary: 'Delete a job',
  description: 'Unschedules the job (queued manual runs included) and deletes it. Its run history is kept.',
  tags,
  security,
  request: { params: ObjectIdParam },
  responses: {
    204: { description: 'Deleted.' },
    ...problemResponses('invalid-request', 'not-found', ...always),
  },
});

export const runNow = createRoute({
  method: 'post',
  path: '/jobs/{id}/run-now',
  operationId: 'runJobNow',
  summary: 'Run a job now',
  description: 'Queues one manual run, also for a paused job. Follow it with `GET /jobs/{id}/runs`.',
  tags,
  security,
  request: { params: ObjectIdParam },
  responses: {
    202: { ...json(Run, 'The queued run.'), links: queuedRunLinks },
    ...problemResponses('invalid-request', 'not-found', 'conflict', ...always),
  },
});

export const listRuns = createRoute({
  method: 'get',
  path: '/jobs/{id}/runs',
  operationId: 'listJobRuns',
  summary: "List a job's runs",
  description: 'Newest first: scheduled and manual runs with their slot, start, end, duration, status, error and result.',
  tags,
  security,
  request: { params: ObjectIdParam, query: ListRunsQuery },
  responses: {
    200: json(RunPage, 'One page of runs.'),
    ...problemResponses('invalid-request', 'not-found', ...always),
  },
});
