import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { OpenAPIHono } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import type { Connection } from 'mongoose';
import { isOverloaded } from './db/index.js';
import type { Env } from './env.js';
import type { CatalogConfig } from './jobs/catalog.js';
import { allowedMethods } from './lib/allowed-methods.js';
import { type AuthConfig, requireAuth } from './lib/auth.js';
import type { Guards } from './lib/guards.js';
import { closeAfterUnreadBody, corsFor, securityHeaders } from './lib/http-hygiene.js';
import type { Logger } from './lib/logger.js';
import { countDbError, httpMetrics, type MetricsConfig, metricsHandler } from './lib/metrics.js';
import { ApiError, type FieldError, fieldErrors, problemCodeForStatus, sendProblem } from './lib/problem.js';
import type { AppEnv } from './routes/app-env.js';
import { registerCronRoutes } from './routes/cron/cron.index.js';
import { SERVER_OWNED_FIELDS } from './routes/cron/cron.schemas.js';
import { registerJobTypeRoutes } from './routes/cron/job-types.routes.js';
import { registerHealthRoutes } from './routes/health.routes.js';
import { registerProblemRoutes } from './routes/problems.routes.js';
import { rateLimit } from './routes/rate-limit.middleware.js';
import { documentCommonHeaders } from './routes/response-headers.js';
import { strictSchemaForms } from './routes/schema-forms.js';
import type { CronJobService } from './scheduler/service.js';

export interface AppDeps {
  config: AuthConfig & Pick<Env, 'CORS_ORIGINS'> & CatalogConfig & MetricsConfig;
  logger: Logger;
  service: CronJobService;
  /** Rate limits and idempotency keys (src/lib/guards.ts). */
  guards: Guards;
  /** Whether the database answers, for /readyz. */
  ready: () => Promise<boolean>;
  /** The database /metrics counts active and locked jobs in, when scraped. */
  conn?: Connection;
}

export const openApiInfo = {
  openapi: '3.1.0',
  info: {
    title: 'Cron Jobs API',
    version: '4.0.0',
    description:
      'Create, change, pause, resume, delete and trigger your own scheduled jobs of whitelisted types. Every cron ' +
      "runs in its job's IANA time zone. Errors are RFC 9457 `application/problem+json`.",
  },
  // Relative: the reference page and clients resolve it against wherever the service runs.
  servers: [
    {
      url: '/',
      description: 'This server: production, staging or local, wherever this document was served from',
      'x-internal': false,
    },
  ],
  tags: [
    { name: 'Cron jobs', description: 'Your scheduled jobs and their runs.' },
    { name: 'Health', description: 'Liveness and readiness probes.' },
    { name: 'Problems', description: 'What each error `type` means (RFC 9457).' },
  ],
};

const targetToPart: Record<string, FieldError['in']> = {
  json: 'body',
  query: 'query',
  param: 'path',
  header: 'header',
};

// Mongo driver errors that mean "database unreachable" rather than a bug: answered with 503.
const UNAVAILABLE = /^Mongo(ose)?(ServerSelection|Network|NotConnected|Topology|PoolCleared|OperationTimeout)/;
/** An overloaded local database (see src/db/quirks.ts) is temporary too. */
const isUnavailable = (error: Error) =>
  UNAVAILABLE.test(error.name) || (error.name === 'MongoServerError' && isOverloaded(error));

/** Served so the reference page works offline: no script is fetched from a CDN. */
const scalarBundle = (() => {
  let bundle: string | undefined;
  return () =>
    (bundle ??= readFileSync(
      createRequire(import.meta.url).resolve('@scalar/api-reference/browser/standalone.js'),
      'utf8',
    ));
})();

/** A clock face, as SVG (browsers take an SVG icon at /favicon.ico by its content type). */
const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="14" fill="#2a5db0"/>' +
  '<path d="M16 8v8l6 4" stroke="#fff" stroke-width="3" fill="none" stroke-linecap="round"/></svg>';

/** Builds the HTTP app. Opens no socket and starts no timer: tests and the spec generator import it freely. */
export function createApp(deps: AppDeps) {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const part = targetToPart[result.target] ?? 'body';
        const errors = fieldErrors(part, result.error, part === 'body' ? SERVER_OWNED_FIELDS : undefined);
        return sendProblem(
          c,
          'invalid-request',
          `The request ${part} is invalid: ${errors.map((e) => `${e.path || part}: ${e.message}`).join('; ')}.`,
          errors,
        );
      }
    },
  });

  app.use(requestId());
  app.use(httpMetrics);
  app.use(securityHeaders);
  app.use(closeAfterUnreadBody);
  const cors = corsFor(deps.config.CORS_ORIGINS);
  if (cors) app.use(cors);
  app.use(async (c, next) => {
    const logger = deps.logger.child({ requestId: c.var.requestId });
    c.set('logger', logger);
    c.set('service', deps.service);
    c.set('guards', deps.guards);
    const started = performance.now();
    await next();
    logger.info(
      { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) },
      'request',
    );
  });

  app.onError((error, c) => {
    if (error instanceof ApiError) return sendProblem(c, error.code, error.message, error.errors);
    if (error instanceof HTTPException && error.status < 500) {
      // Hono's own 4xx: malformed JSON (400) or a body without a JSON content type (415).
      const code = problemCodeForStatus(error.status);
      const detail =
        code === 'unsupported-media-type'
          ? 'Send the body as application/json.'
          : error.message || 'The request is invalid.';
      const where =
        code === 'unsupported-media-type'
          ? { in: 'header' as const, path: 'Content-Type' }
          : { in: 'body' as const, path: '' };
      return sendProblem(c, code, detail, [{ ...where, message: error.message }]);
    }
    if (isUnavailable(error)) {
      c.var.logger?.warn({ err: error }, 'database unavailable');
      countDbError('api');
      return sendProblem(c, 'unavailable', 'The database is unreachable; retry shortly.');
    }
    (c.var.logger ?? deps.logger).error({ err: error }, 'unhandled error');
    return sendProblem(c, 'internal', 'Something went wrong on our side.');
  });
  app.notFound((c) => {
    const allow = allowedMethods(app.routes, c.req.path);
    if (allow.length === 0) return sendProblem(c, 'not-found', `No route for ${c.req.method} ${c.req.path}.`);
    c.header('Allow', allow.join(', '));
    return sendProblem(
      c,
      'method-not-allowed',
      `${c.req.method} is not served at ${c.req.path}; it takes ${allow.join(', ')}.`,
    );
  });

  registerHealthRoutes(app, deps.ready);
  registerProblemRoutes(app);

  const cron = new OpenAPIHono<AppEnv>({ defaultHook: app.defaultHook });
  // Per address before the token is checked (so guessing tokens is limited too), per user after.
  cron.use(rateLimit('ip'));
  cron.use(requireAuth(deps.config));
  cron.use(rateLimit('user'));
  registerCronRoutes(cron);
  registerJobTypeRoutes(cron, deps.config);
  app.route('/api/cron', cron);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      "JWT, HS256 with the service's secret or RS256/ES256 from the identity provider's key set (by `kid`): " +
      '`sub` is your user id, `exp` is required, `iss` and `aud` must match where configured; `role: "admin"` or ' +
      '`roles: ["admin"]` makes you an admin. Tokens are checked as RFC8725 (JWT Best Current Practices) ' +
      'advises: the algorithm is pinned per key (never `none`), `exp` is required, issuer and audience are ' +
      'checked where configured.',
  });
  // Built on first request, then served as is: the routes cannot change while the app runs.
  let spec: ReturnType<typeof openApiDocument> | undefined;
  app.get('/openapi.json', (c) => {
    spec ??= openApiDocument(app);
    return c.json(spec);
  });
  app.get('/metrics', metricsHandler(deps.config, deps.conn));
  app.get('/reference/scalar.js', (c) =>
    c.body(scalarBundle(), 200, {
      'Content-Type': 'text/javascript; charset=utf-8',
      'Cache-Control': 'public, max-age=3600',
    }),
  );
  // Browsers ask every site for /favicon.ico: an icon, not a 404 in the reference page's console.
  app.get('/favicon.ico', (c) =>
    c.body(FAVICON, 200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'public, max-age=86400' }),
  );
  app.get(
    '/reference',
    Scalar({
      url: '/openapi.json',
      pageTitle: 'Cron Jobs API',
      // Everything from this server: no script, font, AI agent or telemetry from Scalar's cloud.
      cdn: '/reference/scalar.js',
      withDefaultFonts: false,
      agent: { disabled: true },
      telemetry: false,
      showDeveloperTools: 'never',
      // Every operation visible at once (Health and Problems included), for readers and the browser test.
      defaultOpenAllTags: true,
      authentication: { preferredSecurityScheme: 'bearerAuth' },
      favicon: '/favicon.ico',
    }),
  );

  return app;
}

/** The OpenAPI 3.1 document, from the route definitions alone. */
export function openApiDocument(app: ReturnType<typeof createApp>) {
  return strictSchemaForms(documentCommonHeaders(app.getOpenAPI31Document(openApiInfo)));
}
