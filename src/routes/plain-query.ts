import { createMiddleware } from 'hono/factory';
import { ApiError, type FieldError } from '../lib/problem.js';

/**
 * For routes with query parameters: each may come once, under a plain name. `?type=a&type=b`
 * (an array to most parsers) and `?type[$ne]=x` (an object to qs-style parsers) are refused
 * with 400 naming the parameter, so no filter can ever be handed something other than the
 * single string its schema expects.
 */
export const plainQuery = createMiddleware(async (c, next) => {
  const errors: FieldError[] = [];
  for (const [name, values] of Object.entries(c.req.queries())) {
    const bracket = name.indexOf('[');
    if (bracket >= 0) {
      errors.push({
        in: 'query',
        path: name,
        message: `"${name.slice(0, bracket) || name}" must be a plain string, not an object or array`,
      });
    } else if (values.length > 1) {
      errors.push({ in: 'query', path: name, message: `given ${values.length} times; give it once` });
    }
  }
  if (errors.length) {
    throw new ApiError(
      'invalid-request',
      `The request query is invalid: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}.`,
      errors,
    );
  }
  await next();
});
