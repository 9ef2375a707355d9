import type { RouterRoute } from 'hono/types';

/** `/api/cron/jobs/:id` -> a regex for the concrete paths it serves. */
const toRegex = (path: string) =>
  new RegExp(
    `^${path
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/\/:[^/]+/g, '/[^/]+')
      .replace(/\/\*$/, '(/.*)?')}$`,
  );

/**
 * The methods the app serves at `path` (middleware, registered for every method, left out),
 * for a 405 with `Allow` instead of a 404 when only the method is wrong (RFC 9110 section 15.5.6).
 */
export function allowedMethods(routes: RouterRoute[], path: string): string[] {
  const methods = new Set(
    routes.filter((r) => r.method !== 'ALL' && toRegex(r.path).test(path)).map((r) => r.method.toUpperCase()),
  );
  // Hono answers HEAD wherever it answers GET.
  if (methods.has('GET')) methods.add('HEAD');
  return [...methods].sort();
}
