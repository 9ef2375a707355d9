import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import type { Logger } from '../lib/logger.js';
import { stopChild } from './child.js';
import { startPostgres } from './postgres.js';
import { type LocalBackend, localBackendOf } from './quirks.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const goModule = join(root, 'scripts/ferretdb');
const ferretdbBinary = join(root, '.local/bin/ferretdb');

export interface LocalDb {
  uri: string;
  port: number;
  /** Where FerretDB keeps the documents (see quirks.ts for why PostgreSQL is the default). */
  backend: LocalBackend;
  /**
   * The FerretDB process: "the database" for signals (tests freeze it to simulate a stalled
   * database). Every client reaches PostgreSQL only through it, so freezing it stalls them all.
   */
  pid: number;
  /** Stops FerretDB cleanly (SIGTERM), then PostgreSQL (fast shutdown), and waits for both. */
  stop(): Promise<void>;
}

/**
 * Builds FerretDB 1.24.2 with the machine's Go, for machines where MongoDB cannot be installed;
 * see scripts/ferretdb/main.go for why it is our own module. The binary is reused until the
 * module's sources change (their hash is kept beside it).
 */
async function buildFerretDb(logger?: Logger): Promise<string> {
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'main.go', ...OVERLAYS.map((o) => o.source)])
    hash.update(readFileSync(join(goModule, file)));
  const sourceHash = hash.digest('hex');
  const stamp = `${ferretdbBinary}.sha256`;
  if (existsSync(ferretdbBinary) && existsSync(stamp) && readFileSync(stamp, 'utf8') === sourceHash)
    return ferretdbBinary;
  logger?.info({ binary: ferretdbBinary }, 'building FerretDB with go (first run only, about a minute)');
  const started = Date.now();
  await goBuild(logger);
  writeFileSync(stamp, sourceHash);
  logger?.info({ ms: Date.now() - started }, 'FerretDB built');
  return ferretdbBinary;
}

/**
 * Our patched copies of FerretDB files (see their headers: equality lookups use the indexes; an
 * update command's statements each give their connection back when done).
 */
const OVERLAYS = [
  { source: 'overlay/sqlite-collection.go', replaces: 'internal/backends/sqlite/collection.go' },
  { source: 'overlay/postgresql-query.go', replaces: 'internal/backends/postgresql/query.go' },
  { source: 'overlay/handler-msg-update.go', replaces: 'internal/handler/msg_update.go' },
];
const FERRETDB_VENDORED = 'vendor/github.com/FerretDB/FerretDB';
const buildDir = join(root, '.local/ferretdb-build');

/**
 * A copy of the module with its dependencies vendored and our patched files in place of
 * FerretDB's own (Go refuses overlays of files in the module cache, but builds vendor/ as is).
 */
function prepareBuildDir(): void {
  rmSync(buildDir, { recursive: true, force: true });
  mkdirSync(buildDir, { recursive: true });
  for (const file of ['go.mod', 'go.sum', 'main.go']) copyFileSync(join(goModule, file), join(buildDir, file));
  execFileSync('go', ['mod', 'vendor'], { cwd: buildDir, stdio: 'pipe' });
  for (const { source, replaces } of OVERLAYS)
    copyFileSync(join(goModule, source), join(buildDir, FERRETDB_VENDORED, replaces));
}

/** How often a long build reports that it is still going. */
const PROGRESS_EVERY_MS = 5_000;

/**
 * `go build -v` names each package as it compiles it: counting those lines turns a silent minute
 * (downloading modules, compiling a few hundred packages) into progress the user can see.
 */
function goBuild(logger?: Logger): Promise<void> {
  return new Promise((ok, fail) => {
    try {
      prepareBuildDir();
    } catch (error) {
      return fail(new Error(`cannot prepare the FerretDB build (Go >= 1.24 is needed): ${(error as Error).message}`));
    }
    const child = spawn('go', ['build', '-v', '-buildvcs=false', '-mod=vendor', '-o', ferretdbBinary, '.'], {
      cwd: buildDir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let packages = 0;
    let tail = '';
    const output: string[] = []; // the last lines, for the error message of a failed build
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (tail + chunk).split('\n');
      tail = lines.pop()!;
      // Download and error lines ("go: downloading ...", "# pkg") are not packages.
      packages += lines.filter((l) => l && !l.startsWith('go:') && !l.startsWith('#') && !l.startsWith('\t')).length;
      output.push(...lines.slice(-20));
      output.splice(0, Math.max(0, output.length - 20));
    });
    const timer = setInterval(
      () => logger?.info({ packages }, `building FerretDB: ${packages} packages compiled so far`),
      PROGRESS_EVERY_MS,
    );
    child.once('error', (error) => {
      clearInterval(timer);
      fail(new Error(`cannot run go (Go >= 1.24 is needed to build the local FerretDB): ${error.message}`));
    });
    child.once('exit', (code) => {
      clearInterval(timer);
      // The vendored copy is only needed while compiling (a few hundred MB).
      if (code === 0) {
        rmSync(buildDir, { recursive: true, force: true });
        ok();
      } else fail(new Error(`go build of FerretDB failed (exit ${code}):\n${[...output, tail].join('\n')}`));
    });
  });
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

/** FerretDB's flags for SQLite files in `dir`/sqlite (synchronous=normal: WAL, no fsync per commit). */
function sqliteStorage(dir: string): string[] {
  const files = join(dir, 'sqlite');
  mkdirSync(files, { recursive: true });
  return ['-handler=sqlite', `-sqlite-url=file:${files}/?_pragma=synchronous(normal)`];
}

/**
 * Starts the local database in `dataDir`: by default a PostgreSQL cluster and FerretDB over it
 * (`LOCAL_DB=sqlite` or `backend: 'sqlite'`: FerretDB over SQLite files), FerretDB on a free
 * loopback port. Waits until it answers a ping and returns its URI and a clean stop. A `port`
 * given restarts a database on the address its clients know (fault tests stop and restart one).
 */
export async function startLocalDb(
  dataDir: string,
  logger?: Logger,
  options: { port?: number; backend?: LocalBackend } = {},
): Promise<LocalDb> {
  const backend = options.backend ?? localBackendOf(process.env);
  const binary = await buildFerretDb(logger);
  const dir = resolve(root, dataDir);
  mkdirSync(dir, { recursive: true });
  const postgres = backend === 'postgresql' ? await startPostgres(join(dir, 'postgresql'), logger) : undefined;
  const storage = postgres ? ['-handler=postgresql', `-postgresql-url=${postgres.url}`] : sqliteStorage(dir);
  const port = options.port ?? (await freePort());
  const log = openSync(join(dir, 'ferretdb.log'), 'a');
  const child = spawn(binary, [`-listen-addr=127.0.0.1:${port}`, ...storage, '-log-level=warn'], {
    stdio: ['ignore', log, log],
    // Its own process group: a Ctrl-C meant for the service (which then drains, still writing
    // to the database) does not stop the database under it; the service stops it last.
    detached: true,
  });
  // Whatever ends this process, FerretDB does not outlive it: an exit handler for a crash or a
  // deadline's exit, and FerretDB's own watch on its parent for a SIGKILL (see main.go).
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  const uri = `mongodb://127.0.0.1:${port}/cronjobs`;
  const stop = async () => {
    await stopChild(child, 'SIGTERM');
    await postgres?.stop();
  };
  try {
    await waitUntilAnswering(uri, child, 20_000);
  } catch (error) {
    child.kill('SIGKILL');
    await postgres?.stop();
    throw error;
  }
  logger?.info({ uri, backend, dataDir: dir }, 'local database started (FerretDB)');
  return { uri, port, backend, pid: child.pid!, stop };
}
