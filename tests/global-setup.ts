import { readdir, rm } from 'node:fs/promises';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { type LocalBackend, type LocalDb, startLocalDb } from '../src/db/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
    /** The local database's backend, or 'external' for MONGODB_URI. */
    localBackend: LocalBackend | 'external';
  }
}

let db: LocalDb | undefined;
const dataDir = `.local/test-db-${process.pid}`;

/** One database server for the run: MONGODB_URI when set, else a fresh local database (LOCAL_DB picks its backend). */
export async function setup(project: TestProject) {
  // The test harness's only look at the environment: which database to use.
  const external = process.env.MONGODB_URI;
  if (external) {
    project.provide('mongoUri', external);
    project.provide('localBackend', 'external');
    return;
  }
  await removeStaleDataDirs();
  db = await startLocalDb(dataDir);
  project.provide('mongoUri', db.uri);
  project.provide('localBackend', db.backend);
}

export async function teardown() {
  await db?.stop();
  if (db) await rm(dataDir, { recursive: true, force: true });
}

/** Data folders of earlier runs that were killed before their teardown (their process is gone). */
async function removeStaleDataDirs() {
  const entries = await readdir('.local').catch(() => [] as string[]);
  for (const entry of entries) {
    const pid = Number(/^(?:test|outage)-db-(\d+)$/.exec(entry)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      await rm(`.local/${entry}`, { recursive: true, force: true });
    }
  }
}
