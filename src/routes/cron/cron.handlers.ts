import type { RouteHandler } from '@hono/zod-openapi';
import { jobEtag } from '../../lib/etag.js';
import type { AppEnv } from '../app-env.js';
import { toCronJob, toRun } from './cron.mappers.js';
import type * as routes from './cron.routes.js';

export const create: RouteHandler<typeof routes.create, AppEnv> = async (c) => {
  const job = await c.var.service.create(c.var.caller, c.req.valid('json'));
  c.header('ETag', jobEtag(job));
  return c.json(toCronJob(job), 201);
};

export const list: RouteHandler<typeof routes.list, AppEnv> = async (c) => {
  const page = await c.var.service.list(c.var.caller, c.req.valid('query'));
  return c.json({ items: page.items.map(toCronJob), nextCursor: page.nextCursor }, 200);
};

export const get: RouteHandler<typeof routes.get, AppEnv> = async (c) => {
  const job = await c.var.service.get(c.var.caller, c.req.valid('param').id);
  c.header('ETag', jobEtag(job));
  return c.json(toCronJob(job), 200);
};

export const replace: RouteHandler<typeof routes.replace, AppEnv> = async (c) => {
  const job = await c.var.service.update(
    c.var.caller,
    c.req.valid('param').id,
    c.req.valid('json'),
    'replace',
    c.req.valid('header')['if-match'],
  );
  c.header('ETag', jobEtag(job));
  return c.json(toCronJob(job), 200);
};

export const patch: RouteHandler<typeof routes.patch, AppEnv> = async (c) => {
  const job = await c.var.service.update(
    c.var.caller,
    c.req.valid('param').id,
    c.req.valid('json'),
    'patch',
    c.req.valid('header')['if-match'],
  );
  c.header('ETag', jobEtag(job));
  return c.json(toCronJob(job), 200);
};

export const remove: RouteHandler<typeof routes.remove, AppEnv> = async (c) => {
  await c.var.service.remove(c.var.caller, c.req.valid('param').id, c.req.valid('header')['if-match']);
  return c.body(null, 204);
};

export const runNow: RouteHandler<typeof routes.runNow, AppEnv> = async (c) => {
  const run = await c.var.service.runNow(c.var.caller, c.req.valid('param').id);
  return c.json(toRun(run), 202);
};

export const listRuns: RouteHandler<typeof routes.listRuns, AppEnv> = async (c) => {
  const page = await c.var.service.listRuns(c.var.caller, c.req.valid('param').id, c.req.valid('query'));
  return c.json({ items: page.items.map(toRun), nextCursor: page.nextCursor }, 200);
};

export const preview: RouteHandler<typeof routes.preview, AppEnv> = (c) => {
  return c.json(c.var.service.preview(c.req.valid('query')), 200);
};
