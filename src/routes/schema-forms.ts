/**
 * Rewrites the generated document's schemas into equivalent forms that strict readers accept.
 * Scalar's reference (its document validation) refuses, and logs "Expected union value" for:
 * `additionalProperties: {}` (written `true` here), a `oneOf`/`anyOf` with no `type` of its own
 * (the branches' types, read through `$ref`s, and the string length they imply, are restated),
 * `propertyNames` without a type (`string`, as JSON keys are), and zod-to-openapi's
 * `allOf: [{$ref}, {default...}]` for a named schema with a default (the annotations become
 * siblings of the `$ref`, which OpenAPI 3.1 allows). Meaning is unchanged.
 */
type Node = Record<string, unknown>;

const isNode = (value: unknown): value is Node => typeof value === 'object' && value !== null;

/** Finds the schema a `$ref` points at, to read its type. */
type Resolve = (ref: string) => Node | undefined;

function branchTypes(branches: unknown[], resolve: Resolve): string | string[] | undefined {
  const typeOf = (b: unknown) =>
    isNode(b) ? (typeof b.$ref === 'string' ? resolve(b.$ref)?.type : b.type) : undefined;
  const types = branches.map(typeOf);
  if (types.some((t) => t === undefined)) return undefined;
  const all = [...new Set(types.flatMap((t) => t as string | string[]))].sort();
  return all.length === 1 ? all[0] : all;
}

function rewrite(node: Node, resolve: Resolve) {
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
      const type = branchTypes(branches, resolve);
      if (type) node.type = type;
      // A bound on the strings' length that the branches imply, restated beside the restated type
      // for linters: the longest a string branch allows (its maxLength, or its longest enum value).
      const lengths = branches.map((b) => (isNode(b) && typeof b.$ref === 'string' ? resolve(b.$ref) : b));
      const strings = lengths.filter((b): b is Node => isNode(b) && b.type === 'string');
      const bounds = strings.map((b) =>
        typeof b.maxLength === 'number'
          ? b.maxLength
          : Array.isArray(b.enum)
            ? Math.max(...b.enum.map((v) => String(v).length))
            : undefined,
      );
      if (type?.includes('string') && strings.length && bounds.every((b) => b !== undefined)) {
        node.maxLength ??= Math.max(...(bounds as number[]));
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

function walk(value: unknown, resolve: Resolve) {
  if (Array.isArray(value)) for (const item of value) walk(item, resolve);
  else if (isNode(value)) {
    rewrite(value, resolve);
    for (const child of Object.values(value)) walk(child, resolve);
  }
}

/** Applied to the whole document (app.ts), after generation. */
export function strictSchemaForms<D extends { components?: { schemas?: object } }>(doc: D): D {
  const schemas = (doc.components?.schemas ?? {}) as Record<string, Node>;
  const prefix = '#/components/schemas/';
  walk(doc, (ref) => (ref.startsWith(prefix) ? schemas[ref.slice(prefix.length)] : undefined));
  return doc;
}
