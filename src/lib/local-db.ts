import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  for (const file of ['go.mod', 'go.sum', 'main.go', OVERLAY_SOURCE]) hash.update(readFileSync(join(goModule, file)));
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

/** Our patched copy of one FerretDB file (see its header: the _id index is used). */
const OVERLAY_SOURCE = 'overlay/sqlite-collection.go';
const PATCHED_FILE = 'vendor/github.com/FerretDB/FerretDB/internal/backends/sqlite/collection.go';
const buildDir = join(root, '.local/ferretdb-build');

/**
 * A copy of the module with its dependencies vendored and our patched file in place of
 * FerretDB's own (Go refuses overlays of files in the module cache, but builds vendor/ as is).
 */
function prepareBuildDir(): void {
  rmSync(buildDir, { recursive: true, force: true });
  mkdirSync(buildDir, { recursive: true });
  for (const file of ['go.mod', 'go.sum', 'main.go']) copyFileSync(join(goModule, file), join(buildDir, file));
  execFileSync('go', ['mod', 'vendor'], { cwd: buildDir, stdio: 'pipe' });
  copyFileSync(join(goModule, OVERLAY_SOURCE), join(buildDir, PATCHED_FILE));
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

/**
 * Starts FerretDB on a free loopback port with its SQLite files in `dataDir`, waits until it
 * answers a ping, and returns its URI and a clean stop. A `port` given restarts a database on
 * the address its clients know (fault tests stop and restart one).
 */
export async function startLocalDb(
  dataDir: string,
  logger?: Logger,
  options: { port?: number } = {},
): Promise<LocalDb> {
  const binary = await buildFerretDb(logger);
  const dir = resolve(root, dataDir);
  mkdirSync(dir, { recursive: true });
  const port = options.port ?? (await freePort());
  const log = openSync(join(dir, 'ferretdb.log'), 'a');
  const child = spawn(
    binary,
    [`-listen-addr=127.0.0.1:${port}`, `-sqlite-url=file:${dir}/?_pragma=synchronous(normal)`, '-log-level=warn'],
    // Its own process group: a Ctrl-C meant for the service (which then drains, still writing
    // to the database) does not stop the database under it; the service stops it last.
    { stdio: ['ignore', log, log], detached: true },
  );
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
