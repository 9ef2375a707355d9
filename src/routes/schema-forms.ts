/**
 * Rewrites the generated document's schemas into equivalent forms that strict readers accept.
 * Scalar's reference (its document validation) refuses, and logs "Expected union value" for:
 * `additionalProperties: {}` (written `true` here), a `oneOf`/`anyOf` with no `type` of its own
 * (the branches' types, and a string length they share, are restated), `propertyNames` without a type (`string`, as JSON keys are),
 * and zod-to-openapi's `allOf: [{$ref}, {default...}]` for a named schema with a default (the
 * annotations become siblings of the `$ref`, which OpenAPI 3.1 allows). Meaning is unchanged.
 */
type Node = Record<string, unknown>;

const isNode = (value: unknown): value is Node => typeof value === 'object' && value !== null;

function branchTypes(branches: unknown[]): string | string[] | undefined {
  const types = branches.map((b) => (isNode(b) ? b.type : undefined));
  if (types.some((t) => t === undefined)) return undefined;
  const all = [...new Set(types.flatMap((t) => t as string | string[]))].sort();
  return all.length === 1 ? all[0] : all;
}

function rewrite(node: Node) {
  const extra = node.additionalProperties;
  if (isNode(extra) && Object.keys(extra).length === 0) node.additionalProperties = true;
  const [ref, annotations, ...rest] = Array.isArray(node.allOf) ? node.allOf : [];
  if (isNode(ref) && ref.$ref && isNode(annotations) && !annotations.$ref && !annotations.type && !rest.length) {
    delete node.allOf;
    Object.assign(node, ref, annotations);
  }
  for (const key of ['oneOf', 'anyOf'] as const) {
    const branches = node[key];
    if (Array.isArray(branches) && node.type === undefined) {
      const type = branchTypes(branches);
      if (type) node.type = type;
      // A length that applies to strings only, restated beside the restated type for linters.
      const lengths = new Set(branches.filter((b) => isNode(b) && b.type === 'string').map((b) => b.maxLength));
      if (type?.includes('string') && lengths.size === 1 && node.maxLength === undefined) {
        const [maxLength] = lengths;
        if (maxLength !== undefined) node.maxLength = maxLength;
      }
    }
  }
  const names = node.propertyNames;
  if (isNode(names) && names.type === undefined) {
    names.type = 'string';
    // A pattern like ^[A-Za-z0-9_]{1,50}$ bounds the length already: say so as maxLength.
    const bound = typeof names.pattern === 'string' ? /^\^[^{}]*\{\d+,(\d+)\}\$$/.exec(names.pattern) : null;
    if (bound && names.maxLength === undefined) names.maxLength = Number(bound[1]);
  }
}

function walk(value: unknown) {
  if (Array.isArray(value)) for (const item of value) walk(item);
  else if (isNode(value)) {
    rewrite(value);
    for (const child of Object.values(value)) walk(child);
  }
}

/** Applied to the whole document (app.ts), after generation. */
export function strictSchemaForms<D extends object>(doc: D): D {
  walk(doc);
  return doc;
}
