/**
 * Would MongoDB serve this query from an index? The check its `notablescan` setting makes, done
 * on the query's shape against a list of declared indexes instead of on a server's plan, so it
 * can judge queries recorded against FerretDB (which plans nothing) as MongoDB would run them.
 *
 * A filter is served when some index's first key is a field the filter constrains in a way an
 * index bounds: equality (a plain value or `$eq`), `$in`, a range (`$gt`, `$gte`, `$lt`, `$lte`),
 * `$exists`, `$ne`/`$nin`, `$regex` or `$elemMatch` on that field. `$and` is served when any of
 * its parts is; `$or` only when every branch is (MongoDB plans each branch alone, and one
 * unindexed branch scans the collection). `$nor`, `$not`, `$expr`, `$where` and `$text` bound no
 * index. `_id` is always indexed. An empty filter is a collection scan, unless a sort is served.
 *
 * A sort is served when one index reads in its order: the index's keys are some fields the
 * filter fixes by equality, then exactly the sort's keys, all in the index's directions or all
 * reversed (equality fields may be anywhere in the prefix, as MongoDB allows).
 */

export type IndexKey = Record<string, 1 | -1 | string>;
type Doc = Record<string, unknown>;

const RANGE_OPERATORS = new Set([
  '$eq',
  '$in',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$exists',
  '$ne',
  '$nin',
  '$regex',
  '$elemMatch',
  '$type',
  '$all',
  '$size',
]);

const isPlainObject = (v: unknown): v is Doc =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  !(v instanceof Date) &&
  !(v instanceof RegExp) &&
  (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

const isOperatorObject = (v: unknown): v is Doc => isPlainObject(v) && Object.keys(v).some((k) => k.startsWith('$'));

/** Whether a field's condition can bound an index on it; `$size` is left out (it cannot). */
function boundsIndex(condition: unknown): boolean {
  if (!isOperatorObject(condition)) return true; // equality with a value, subdocument included
  return Object.keys(condition).some((op) => RANGE_OPERATORS.has(op) && op !== '$size');
}

/** Whether a field's condition is an equality (a plain value, `$eq`, or `$in` of one value). */
function isEquality(condition: unknown): boolean {
  if (!isOperatorObject(condition)) return true;
  const ops = Object.keys(condition);
  if (ops.length !== 1) return false;
  if (ops[0] === '$eq') return true;
  return ops[0] === '$in' && Array.isArray(condition.$in) && condition.$in.length === 1;
}

/** The fields of `filter` an index could be bounded on, as alternatives: each `$or` branch alone. */
function boundedFields(filter: Doc): { fields: Set<string>; or: Doc[][] } {
  const fields = new Set<string>();
  const or: Doc[][] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' && Array.isArray(value)) {
      for (const part of value as Doc[]) {
        const inner = boundedFields(part);
        for (const f of inner.fields) fields.add(f);
        or.push(...inner.or);
      }
    } else if (key === '$or' && Array.isArray(value)) {
      or.push(value as Doc[]);
    } else if (!key.startsWith('$') && boundsIndex(value)) {
      fields.add(key);
    }
  }
  return { fields, or };
}

const leading = (index: IndexKey) => Object.keys(index)[0];

/** Why `filter` scans the collection, or undefined when an index in `indexes` serves it. */
export function unservedFilter(filter: Doc, indexes: IndexKey[]): string | undefined {
  const all = [{ _id: 1 } as IndexKey, ...indexes];
  const { fields, or } = boundedFields(filter);
  if (all.some((index) => fields.has(leading(index)!))) return undefined;
  // Without a served field of its own, an $or (or one of an $and's) must be served branch by branch.
  for (const branches of or) {
    const unserved = branches.map((b) => unservedFilter(b, indexes)).filter(Boolean);
    if (unserved.length === 0) return undefined;
  }
  if (Object.keys(filter).length === 0) return 'no filter: a collection scan';
  const named = [...fields, ...or.map(() => '$or')].join(', ') || Object.keys(filter).join(', ');
  return `no index leads with a field of the filter (${named})`;
}

/** Fields `filter` fixes by equality at its top level (or in an `$and`). */
function equalityFields(filter: Doc): Set<string> {
  const fields = new Set<string>();
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' && Array.isArray(value)) {
      for (const part of value as Doc[]) for (const f of equalityFields(part)) fields.add(f);
    } else if (!key.startsWith('$') && isEquality(value)) fields.add(key);
  }
  return fields;
}

const direction = (v: unknown) => (v === -1 || v === '-1' || v === 'desc' || v === 'descending' ? -1 : 1);

/** Why the sort of a query on `filter` needs an in-memory sort, or undefined when an index reads in its order. */
export function unservedSort(filter: Doc, sort: Doc, indexes: IndexKey[]): string | undefined {
  const sortKeys = Object.entries(sort).filter(([k, v]) => k !== '$natural' && !isPlainObject(v));
  if (sortKeys.length === 0) return undefined;
  const equal = equalityFields(filter);
  for (const index of [{ _id: 1 } as IndexKey, ...indexes]) {
    const keys = Object.entries(index);
    let at = 0;
    // Skip the equality prefix, then the sort keys must follow in order, all same or all reversed.
    while (at < keys.length && equal.has(keys[at]![0]) && keys[at]![0] !== sortKeys[0]![0]) at++;
    const run = keys.slice(at, at + sortKeys.length);
    if (run.length !== sortKeys.length) continue;
    if (run.some(([k], i) => k !== sortKeys[i]![0])) continue;
    const same = run.every(([, d], i) => direction(d) === direction(sortKeys[i]![1]));
    const reversed = run.every(([, d], i) => direction(d) === -direction(sortKeys[i]![1]));
    if (same || reversed) return undefined;
  }
  return `no index reads in the order ${JSON.stringify(Object.fromEntries(sortKeys))} after the filter's equalities`;
}

/** Why a query (filter and optional sort) is not served by `indexes`; undefined when it is. */
export function unservedQuery(filter: Doc, sort: Doc | undefined, indexes: IndexKey[]): string | undefined {
  const sortProblem = sort ? unservedSort(filter, sort, indexes) : undefined;
  if (sortProblem) return sortProblem;
  const filterProblem = unservedFilter(filter, indexes);
  // An empty filter read in an index's order is an index scan, which notablescan allows.
  if (filterProblem && Object.keys(filter).length === 0 && sort && Object.keys(sort).length > 0) return undefined;
  return filterProblem;
}

/** The query of one recorded database command: its collection, filters and sort. */
export interface RecordedQuery {
  command: string;
  collection: string;
  filter: Doc;
  sort?: Doc;
}

/** The queries in a command (as the driver's `commandStarted` event carries it); none for writes without one. */
export function queriesOf(commandName: string, command: Doc): RecordedQuery[] {
  const collection = String(command[commandName]);
  // The driver hands sorts over as Maps (key order matters).
  const asDoc = (v: unknown) => (v instanceof Map ? (Object.fromEntries(v) as Doc) : (v as Doc | undefined));
  const one = (filter: unknown, sort?: unknown): RecordedQuery => {
    const order = asDoc(sort);
    return {
      command: commandName,
      collection,
      filter: asDoc(filter) ?? {},
      ...(order && Object.keys(order).length ? { sort: order } : {}),
    };
  };
  switch (commandName) {
    case 'find':
      return [one(command.filter, command.sort)];
    case 'count':
    case 'distinct':
      return [one(command.query)];
    case 'findAndModify':
      return [one(command.query, command.sort)];
    case 'update':
      return (command.updates as Doc[]).map((u) => one(u.q));
    case 'delete':
      return (command.deletes as Doc[]).map((d) => one(d.q));
    case 'aggregate': {
      const [first, second] = command.pipeline as Doc[];
      if (first && '$match' in first)
        return [one(first.$match, second && '$sort' in second ? second.$sort : undefined)];
      if (first && '$sort' in first) return [one({}, first.$sort)];
      return [one({})];
    }
    default:
      return [];
  }
}
