import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

/** Output kept per process: enough to explain a failed start, bounded however long it runs. */
const OUTPUT_TAIL_CHARS = 20_000;
/** How long `stop()` waits after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 10_000;

/** Ready when a GET to `url` answers (any status below 500), or when the output contains `output`. */
export type Readiness = { url: string } | { output: string };

export interface ServiceProcessOptions {
  /** For messages, e.g. "api". */
  name: string;
  /** A TypeScript or JavaScript entry point, relative to the repository root (e.g. src/server.ts). */
  entry: string;
  /** The whole environment beyond PATH and HOME: nothing else is inherited from the benchmark. */
  env: Record<string, string>;
  ready: Readiness;
  timeoutMs?: number;
}

export interface ServiceProcess {
  name: string;
  pid: number;
  /** The last output lines (stdout and stderr together). */
  output(): string;
  /** Resident set size now, in bytes (VmRSS of /proc/<pid>/status; Linux only). */
  rssBytes(): number;
  /** SIGTERM, then SIGKILL after a grace period; resolves once the process has exited. */
  stop(): Promise<void>;
}

/**
 * Starts one entry point as its own node process with `node --import tsx`, as the service runs
 * in production (one process per role), and waits until it is ready. The process is killed
 * when the benchmark process exits, however it exits, so a failed run leaves nothing behind.
 */
export async function startServiceProcess(options: ServiceProcessOptions): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', options.entry], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-OUTPUT_TAIL_CHARS));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  // 'error' (the spawn itself failed) rejects `once`; the readiness check then reports the exit.
  const exited = once(child, 'exit').then(
    () => process.off('exit', killOnExit),
    () => process.off('exit', killOnExit),
  );

  const proc: ServiceProcess = {
    name: options.name,
    pid: child.pid!,
    output: () => output,
    rssBytes: () => rssOf(child.pid!),
    async stop() {
      if (!running(child)) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
  try {
    await waitReady(child, options, () => output);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  return proc;
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

async function waitReady(child: ChildProcess, options: ServiceProcessOptions, output: () => string): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const tail = () => output().slice(-2000);
  for (;;) {
    if (!running(child))
      throw new Error(`${options.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail()}`);
    if (await isReady(options.ready, output())) return;
    if (Date.now() > deadline) throw new Error(`${options.name} not ready within ${timeoutMs} ms:\n${tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function isReady(ready: Readiness, output: string): Promise<boolean> {
  if ('output' in ready) return output.includes(ready.output);
  try {
    const response = await fetch(ready.url, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.status < 500;
  } catch {
    return false; // not listening yet
  }
}

function rssOf(pid: number): number {
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}
