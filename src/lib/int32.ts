import { z } from '@hono/zod-openapi';

export const INT32_MAX = 2 ** 31 - 1;

/**
 * An integer published as `format: int32` with both limits (OWASP API4: bounded numbers). Not
 * `z.int32()`: zod-to-openapi writes that as a plain `number`, which clients type as a float.
 */
export const int32 = (min: number, max = INT32_MAX) => z.int().min(min).max(max).openapi({ format: 'int32' });
