import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Collection, type Document, Double, type Filter, Long, MongoClient, ObjectId } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalDb, startLocalDb } from '../src/db/index.js';

// The overlay scripts/ferretdb/overlay/postgresql-query.go writes an equality on a top-level field
// `f` as `(_jsonb->'f' = $v OR (_jsonb->'f' > 'true' AND _jsonb->'f' < '{}'))`, both arms searches
// of FerretDB's btree index on `((_jsonb->'f'))`. Shown here on a PostgreSQL-backed local database
// of its own (whatever the shared one is): the same documents as FerretDB's own evaluation in Go,
// with MongoDB's meaning (arrays included), and PostgreSQL's plan searching the field's index.

/**
 * A field name a client may send; quoted into the SQL, it must still match its index's expression.
 * (No double quote: FerretDB 1.24.2 fails to store a field name holding one, "invalid input syntax
 * for type json", with or without the overlay.)
 */
const ODD = `it's odd'); DROP TABLE x; --`;
const OID = new ObjectId('65a1b2c3d4e5f60718293a4b');
const OTHER_OID = new ObjectId('65a1b2c3d4e5f60718293a4c');
const DAY = new Date('2026-03-01T00:00:00Z');

/** Documents named by a string `_id`. */
type Named = { _id: string } & Document;

/** Each document's `_id` says what it holds; the expected matches below are written by hand. */
const DOCS: Named[] = [
  { _id: 's-a', s: 'a' },
  { _id: 's-A', s: 'A' },
  { _id: 's-arr-a', s: ['c', 'a'] },
  { _id: 's-arr-c', s: ['c'] },
  { _id: 's-empty-arr', s: [] },
  { _id: 's-arr-doc-a', s: [{ x: 'a' }] }, // FerretDB stores no nested arrays
  { _id: 's-doc-a', s: { x: 'a' } },
  { _id: 's-null', s: null },
  { _id: 's-arr-null', s: ['x', null] },
  { _id: 'o-oid', o: OID },
  { _id: 'o-other', o: OTHER_OID },
  { _id: 'o-arr-oid', o: [OTHER_OID, OID] },
  { _id: 'o-hex-string', o: OID.toHexString() },
  { _id: 'b-true', b: true },
  { _id: 'b-false', b: false },
  { _id: 'b-arr-true', b: [false, true] },
  { _id: 'b-string', b: 'true' },
  { _id: 'b-one', b: 1 },
  { _id: 'n-int', n: 5 },
  { _id: 'n-double', n: new Double(5) },
  { _id: 'n-long', n: Long.fromNumber(5) },
  { _id: 'n-arr', n: [4, 5] },
  { _id: 'n-string', n: '5' },
  { _id: 'n-date-5ms', n: new Date(5) },
  { _id: 'd-date', d: DAY },
  { _id: 'd-arr', d: [DAY] },
  { _id: 'd-millis', d: DAY.getTime() },
  { _id: 'odd-a', [ODD]: 'a' },
  { _id: 'odd-b', [ODD]: 'b' },
];
/** Enough other documents that PostgreSQL prefers an index to reading the table, with or without statistics. */
const FILLERS = 5000;
const FIELDS = ['s', 'o', 'b', 'n', 'd', ODD];

const CASES: { name: string; filter: Filter<Named>; ids: string[] }[] = [
  { name: 'string', filter: { s: 'a' }, ids: ['s-a', 's-arr-a'] },
  { name: 'string by $eq', filter: { s: { $eq: 'a' } }, ids: ['s-a', 's-arr-a'] },
  { name: 'string in no document', filter: { s: 'zzz' }, ids: [] },
  { name: 'ObjectId (not its hex as a string)', filter: { o: OID }, ids: ['o-arr-oid', 'o-oid'] },
  { name: 'ObjectId by $eq', filter: { o: { $eq: OID } }, ids: ['o-arr-oid', 'o-oid'] },
  { name: 'hex string (not the ObjectId)', filter: { o: OID.toHexString() }, ids: ['o-hex-string'] },
  { name: 'true', filter: { b: true }, ids: ['b-arr-true', 'b-true'] },
  { name: 'false', filter: { b: false }, ids: ['b-arr-true', 'b-false'] },
  {
    name: 'int32 (every numeric type, not a string or date)',
    filter: { n: 5 },
    ids: ['n-arr', 'n-double', 'n-int', 'n-long'],
  },
  { name: 'date (not its milliseconds as a number)', filter: { d: DAY }, ids: ['d-arr', 'd-date'] },
  { name: 'null (null, missing, in an array)', filter: { s: null, _id: /^s-/ }, ids: ['s-arr-null', 's-null'] },
  { name: 'a field no document has', filter: { missing: 'a' }, ids: [] },
  { name: 'a field name with quotes', filter: { [ODD]: 'a' }, ids: ['odd-a'] },
  { name: 'two fields', filter: { s: 'a', _id: 's-arr-a' }, ids: ['s-arr-a'] },
];

/** PostgreSQL's plan for a find, as FerretDB's explain returns it (EXPLAIN without ANALYZE). */
async function planOf(col: Collection<Named>, filter: Filter<Named>): Promise<Document[]> {
  const reply = await col.db.command({ explain: { find: col.collectionName, filter }, verbosity: 'queryPlanner' });
  const nodes: Document[] = [];
  const walk = (node: Document) => {
    nodes.push(node);
    for (const child of (node.Plans as Document[] | undefined) ?? []) walk(child);
  };
  walk((reply.queryPlanner as Document).Plan);
  return nodes;
}

describe('equality on a top-level field, pushed down to its PostgreSQL index (FerretDB overlay)', () => {
  let dir: string;
  let db: LocalDb;
  let client: MongoClient;
  let col: Collection<Named>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cronjobs-pushdown-'));
    db = await startLocalDb(dir, undefined, { backend: 'postgresql' });
    client = new MongoClient(db.uri);
    col = client.db('pushdown').collection<Named>('things');
    for (const field of FIELDS) await col.createIndex({ [field]: 1 });
    const fillers = Array.from({ length: FILLERS }, (_, i) => ({ _id: `filler-${i}`, s: `filler-${i}` }));
    await col.insertMany([...DOCS, ...fillers]);
  });
  afterAll(async () => {
    await client?.close();
    await db?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each(CASES)('$name: the documents MongoDB matches, as FerretDB selects them without pushdown', async (c) => {
    const ids = async (filter: Filter<Named>) =>
      (await col.find(filter).toArray()).map((doc) => String(doc._id)).sort();
    expect(await ids(c.filter)).toEqual(c.ids);
    // A top-level $and is never pushed down: FerretDB reads every document and filters in Go.
    expect(await ids({ $and: [c.filter] })).toEqual(c.ids);
  });

  it.each([
    { field: 's', value: 'a' as unknown },
    { field: 'o', value: OID },
    { field: 'b', value: true },
    { field: 'n', value: 5 },
    { field: 'd', value: DAY },
    { field: ODD, value: 'a' },
  ])('$field: PostgreSQL searches the index on the field (equal value, then the arrays)', async ({ field, value }) => {
    const expression = `_jsonb -> '${field.replaceAll("'", "''")}'::text)`;
    for (const filter of [{ [field]: value }, { [field]: { $eq: value } }]) {
      const nodes = await planOf(col, filter);
      const types = nodes.map((node) => node['Node Type']);
      expect(types).not.toContain('Seq Scan');
      expect(types).toContain('BitmapOr');
      const searches = nodes.filter((node) => node['Node Type'] === 'Bitmap Index Scan');
      expect(searches).toHaveLength(2);
      for (const search of searches) expect(search['Index Cond']).toContain(expression);
      expect(searches.map((search) => search['Index Cond']).join(' ')).toMatch(/> 'true'::jsonb.*< '\{\}'::jsonb/);
    }
  });

  it('does not cover a dotted path: FerretDB reads the whole table for it and filters in Go', async () => {
    const nodes = await planOf(col, { 's.x': 'a' });
    expect(nodes.map((node) => node['Node Type'])).toEqual(['Seq Scan']);
    expect(nodes[0]!.Filter).toBeUndefined();
    const found = (await col.find({ 's.x': 'a' }).toArray()).map((doc) => doc._id).sort();
    expect(found).toEqual(['s-arr-doc-a', 's-doc-a']);
  });
});
