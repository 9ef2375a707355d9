/** Deeper JSON than any body of ours needs; it also keeps recursive code downstream safe. */
export const MAX_JSON_DEPTH = 32;

export interface UnsafeKey {
  /** Dotted path to the offending key (or to the value nested too deeply). */
  path: string;
  message: string;
}

/**
 * The first key in a parsed JSON value that MongoDB could read as an operator or a path: one
 * that starts with `$` or contains `.`, at any depth; or a value nested deeper than
 * MAX_JSON_DEPTH. Iterative, so a hostile nesting cannot exhaust the stack.
 */
export function findUnsafeKey(value: unknown): UnsafeKey | undefined {
  const stack: { value: unknown; path: string[] }[] = [{ value, path: [] }];
  while (stack.length) {
    const { value: current, path } = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (path.length > MAX_JSON_DEPTH)
      return { path: path.join('.'), message: `nested more than ${MAX_JSON_DEPTH} levels deep` };
    if (Array.isArray(current)) {
      for (const [i, item] of current.entries()) stack.push({ value: item, path: [...path, String(i)] });
      continue;
    }
    for (const [key, item] of Object.entries(current)) {
      if (key.startsWith('$') || key.includes('.')) {
        return {
          path: [...path, key].join('.'),
          message: `the key "${key}" is not allowed: keys may not start with "$" or contain "."`,
        };
      }
      stack.push({ value: item, path: [...path, key] });
    }
  }
  return undefined;
}
