import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import type { Logger } from './logger.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const goModule = join(root, 'scripts/ferretdb');
const ferretdbBinary = join(root, '.local/bin/ferretdb');

export interface LocalDb {
  uri: string;
  port: number;
  /** The FerretDB process, for signals (tests freeze it to simulate a stalled database). */
  pid: number;
  /** Stops FerretDB cleanly (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Builds FerretDB 1.24.2 with the machine's Go, for machines where MongoDB cannot be installed;
 * see scripts/ferretdb/main.go for why it is our own module. The binary is reused until the
 * module's sources change (their hash is kept beside it).
 */
async function buildFerretDb(logger?: Logger): Promise<string> {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'main.go']) hash.update(readFileSync(join(goModule, file)));
  const sourceHash = hash.digest('hex');
  const stamp = `${ferretdbBinary}.sha256`;
  if (existsSync(ferretdbBinary) && existsSync(stamp) && readFileSync(stamp, 'utf8') === sourceHash) return ferretdbBinary;
  logger?.info({ binary: ferretdbBinary }, 'building FerretDB with go (first run only, about a minute)');
  const started = Date.now();
  await promisify(execFile)('go', ['build', '-buildvcs=false', '-o', ferretdbBinary, '.'], { cwd: goModule, maxBuffer: 16 * 1024 * 1024 });
  writeFileSync(stamp, sourceHash);
  logger?.info({ ms: Date.now() - started }, 'FerretDB built');
  return ferretdbBinary;
}

/** A port nothing listens on right now, on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? ok(address.port) : fail(new Error('no port'))));
    });
  });
}

async function waitUntilAnswering(uri: string, child: ChildProcess, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`FerretDB exited with code ${child.exitCode} before answering`);
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 250 });
    try {
      await client.db('admin').command({ ping: 1 });
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`FerretDB did not answer within ${deadlineMs} ms`, { cause: error });
    } finally {
      await client.close();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts FerretDB on a free loopback port with its SQLite files in `dataDir`, waits until it
 * answers a ping, and returns its URI and a clean stop. A `port` given restarts a database on
 * the address its clients know (fault tests stop and restart one).
 */
export async function startLocalDb(dataDir: string, logger?: Logger, options: { port?: number } = {}): Promise<LocalDb> {
  const binary = await buildFerretDb(logger);
  const dir = resolve(root, dataDir);
  mkdirSync(dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const log = openSync(join(dir, 'ferretdb.log'), 'a');
  const child = spawn(binary, [`-listen-addr=127.0.0.1:${port}`, `-sqlite-url=file:${dir}/`, '-log-level=warn'], {
    stdio: ['ignore', log, log],
  });
  // Whatever ends this process, FerretDB does not outlive it: an exit handler for a crash or a
  // deadline's exit, and FerretDB's own watch on its parent for a SIGKILL (see main.go).
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const uri = `mongodb://127.0.0.1:${port}/cronjobs`;
  try {
    await waitUntilAnswering(uri, child, 20_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  logger?.info({ uri, dataDir: dir }, 'local FerretDB started');
  return {
    uri,
    port,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((ok) => {
        if (child.exitCode !== null || child.signalCode !== null) return ok();
        child.once('exit', () => ok());
        child.kill('SIGTERM');
      }),
  };
}
