import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mongoose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  capabilitiesOf,
  connectDb,
  isDuplicateKey,
  type LocalDb,
  serverKindOf,
  startLocalDb,
} from '../src/db/index.js';
import { parseEnv } from '../src/env.js';

const config = parseEnv({ NODE_ENV: 'test', WORKER_NAME: 'local-db-test' });

/** What the service relies on for "only once": an insert or an update that collides on a unique index. */
async function collisions(conn: Connection) {
  const col = conn.db!.collection('claims');
  await col.createIndex({ key: 1 }, { unique: true });
  await col.insertMany([{ key: 'a' }, { key: 'b' }]);
  const insert = await col.insertOne({ key: 'a' }).catch((error: unknown) => error);
  const update = await col.updateOne({ key: 'b' }, { $set: { key: 'a' } }).catch((error: unknown) => error);
  return { insert, update, stored: await col.countDocuments({ key: 'a' }) };
}

/** The command line of every process now (Linux /proc). */
async function commandLines(): Promise<string[]> {
  const pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry));
  const lines = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')));
  return lines.map((line) => line.replaceAll('\0', ' ')).filter(Boolean);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("the run's database (PostgreSQL under FerretDB unless MONGODB_URI is set)", () => {
  let conn: Connection;
  beforeAll(async () => {
    conn = await connectDb(inject('mongoUri'), config, `t_ldb_${randomUUID().slice(0, 8)}`);
  });
  afterAll(async () => {
    await conn.dropDatabase();
    await conn.close();
  });

  it('reports unique-index violations of inserts and of updates as duplicate keys', async () => {
    const { insert, update, stored } = await collisions(conn);
    if (inject('localBackend') === 'postgresql')
      expect((update as { message?: string }).message).toMatch(
        /duplicate key value violates unique constraint .*\(SQLSTATE 23505\)/,
      );
    expect(isDuplicateKey(insert)).toBe(true);
    expect(isDuplicateKey(update)).toBe(true);
    expect(stored).toBe(1);
    expect(isDuplicateKey(new Error('E11000-looking text but no code'))).toBe(false);
  });

  it('knows which server it talks to and what that server can do', () => {
    const kind = serverKindOf(conn);
    if (inject('localBackend') !== 'external') expect(kind).toBe('ferretdb');
    expect(capabilitiesOf(conn).ttlIndexes).toBe(kind === 'mongodb');
    expect(capabilitiesOf(conn).atomicConditionalUpdate).toBe(kind === 'mongodb');
  });
});

describe('LOCAL_DB=sqlite: FerretDB over SQLite files, the other local backend', () => {
  let dir: string;
  let db: LocalDb;
  let conn: Connection;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'local-db-sqlite-'));
    db = await startLocalDb(dir, undefined, { backend: 'sqlite' });
    conn = await connectDb(db.uri, config);
  });
  afterAll(async () => {
    await conn?.close();
    await db?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts, names its backend, and reports SQLite-worded unique violations as duplicate keys', async () => {
    expect(db.backend).toBe('sqlite');
    expect(serverKindOf(conn)).toBe('ferretdb');
    const { insert, update, stored } = await collisions(conn);
    expect(isDuplicateKey(insert)).toBe(true);
    expect((update as { message?: string }).message).toMatch(/UNIQUE constraint failed/);
    expect(isDuplicateKey(update)).toBe(true);
    expect(stored).toBe(1);
  });

  it('stops its FerretDB on stop()', async () => {
    const other = await startLocalDb(join(dir, 'second'), undefined, { backend: 'sqlite' });
    expect(alive(other.pid)).toBe(true);
    await other.stop();
    expect(alive(other.pid)).toBe(false);
  });
});

describe('a PostgreSQL-backed local database of its own', () => {
  it('stops FerretDB and the cluster on stop(), and keeps its documents across a restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'local-db-pg-'));
    const running = async () => (await commandLines()).filter((args) => args.includes(dir));
    try {
      const first = await startLocalDb(dir, undefined, { backend: 'postgresql' });
      const conn = await connectDb(first.uri, config);
      await conn.db!.collection('kept').insertOne({ n: 1 });
      await conn.close();
      expect((await running()).some((args) => args.includes('postgres'))).toBe(true);
      await first.stop();
      expect(alive(first.pid)).toBe(false);
      expect(await running()).toEqual([]);

      const second = await startLocalDb(dir, undefined, { backend: 'postgresql', port: first.port });
      const again = await connectDb(second.uri, config);
      expect(await again.db!.collection('kept').countDocuments({ n: 1 })).toBe(1);
      await again.close();
      await second.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
