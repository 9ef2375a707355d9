import { rm } from 'node:fs/promises';
import { type LocalDb, startLocalDb } from '../../src/db/index.js';
import { type Harness, startHarness } from './harness.js';

/**
 * A service on a FerretDB of the test file's own, so freezing it stalls nobody else's tests.
 * `freeze()` sends SIGSTOP: the process keeps its socket open but answers nothing, the worst
 * kind of outage; short driver timeouts make the API answer 503 quickly meanwhile.
 */
export interface Freezable {
  h: Harness;
  db: LocalDb;
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

export async function startFreezable(name: string, env: Record<string, string> = {}): Promise<Freezable> {
  const dataDir = `.local/${name}-db-${process.pid}`;
  const db = await startLocalDb(dataDir);
  const h = await startHarness({
    uri: db.uri,
    env: { MONGODB_SOCKET_TIMEOUT_MS: '500', MONGODB_SERVER_SELECTION_TIMEOUT_MS: '500', ...env },
  });
  let frozen = false;
  const thaw = () => {
    if (frozen) process.kill(db.pid, 'SIGCONT');
    frozen = false;
  };
  return {
    h,
    db,
    freeze() {
      process.kill(db.pid, 'SIGSTOP');
      frozen = true;
    },
    thaw,
    async stop() {
      thaw();
      await h.stop();
      await db.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
