import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

/** Lines a process printed at warn level or above, counted by message (pino JSON lines). */
export type WarningCounts = Record<string, number>;

/** A service (or baseline) started as its own node process, as PM2 would start it. */
export interface ServiceProcess {
  pid: number;
  /** From spawn to the ready line, ms. */
  readyMs: number;
  /** Resident memory now, MB (VmRSS of /proc/<pid>/status). */
  rssMb(): number;
  /** CPU time used so far (user + system), s. */
  cpuSeconds(): number;
  /** Each complete stdout/stderr line is passed here as it arrives. */
  onLine(listener: (line: string) => void): void;
  warnings: WarningCounts;
  /** The last few KB of output, for error messages. */
  tail(): string;
  /** SIGKILLs the process (after `signal`, when given, and up to `graceMs` to exit) and waits for it. */
  stop(options?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  /** The script, relative to the repository root, run with `node --import tsx`. */
  entry: string;
  args?: string[];
  env: Record<string, string>;
  /** Modules loaded before the entry (`--import`), e.g. command monitoring. */
  preload?: string[];
  /** The process is ready once a line contains this. */
  readyText: string;
  timeoutMs: number;
}

const TAIL_CHARS = 4000;

/**
 * Starts `node --import tsx <entry>` with only the environment given (plus PATH and HOME) and
 * waits for its ready line. Output is read line by line and not kept, except for a short tail:
 * a worker firing 10 000 jobs logs megabytes. The process is killed should the bench process
 * exit first, so a failed or interrupted benchmark leaves nothing running.
 */
export async function spawnService(options: SpawnOptions): Promise<ServiceProcess> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      ...(options.preload ?? []).flatMap((p) => ['--import', p]),
      options.entry,
      ...(options.args ?? []),
    ],
    {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = once(child, 'exit').then(() => process.off('exit', killOnExit));
  const listeners: ((line: string) => void)[] = [];
  const warnings: WarningCounts = {};
  let tail = '';
  const read = (stream: NodeJS.ReadableStream) => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-TAIL_CHARS);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        countWarning(line, warnings);
        for (const listener of listeners) listener(line);
      }
    });
  };
  read(child.stdout!);
  read(child.stderr!);
  try {
    await ready(child, options, listeners, () => tail);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  const pid = child.pid!;
  return {
    pid,
    readyMs: performance.now() - started,
    rssMb: () => rssMb(pid),
    cpuSeconds: () => cpuSeconds(pid),
    onLine: (listener) => listeners.push(listener),
    warnings,
    tail: () => tail,
    async stop({ signal, graceMs = 0 } = {}) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (signal) {
        child.kill(signal);
        await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs))]);
      }
      child.kill('SIGKILL');
      await exited;
    },
  };
}

function ready(
  child: ChildProcess,
  options: SpawnOptions,
  listeners: ((line: string) => void)[],
  tail: () => string,
): Promise<void> {
  return new Promise((ok, fail) => {
    const timer = setTimeout(
      () =>
        fail(
          new Error(`${options.name} did not print "${options.readyText}" within ${options.timeoutMs} ms:\n${tail()}`),
        ),
      options.timeoutMs,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`${options.name} exited (${code}) before it was ready:\n${tail()}`));
    });
    listeners.push((line) => {
      if (!line.includes(options.readyText)) return;
      clearTimeout(timer);
      ok();
    });
  });
}

/** pino levels 40 (warn) and up; the message says what went wrong often enough to count. */
function countWarning(line: string, warnings: WarningCounts) {
  if (!/"level":(4|5|6)0/.test(line)) return;
  try {
    const entry = JSON.parse(line) as { msg?: unknown; err?: { message?: unknown } };
    // The error's first words tell kinds apart ("agenda error" covers them all); ids would split one kind into many.
    const cause =
      typeof entry.err?.message === 'string'
        ? `: ${entry.err.message
            .replace(/\b[0-9a-f]{24}\b/g, '<id>')
            .split(/\s+/)
            .slice(0, 12)
            .join(' ')}`
        : '';
    const key = `${String(entry.msg ?? '?')}${cause}`;
    warnings[key] = (warnings[key] ?? 0) + 1;
  } catch {
    // Not a log line (a stack trace, say): not counted.
  }
}

/** Resident memory of a process, MB; NaN once it is gone. */
export function rssMb(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) a process has used, s, from /proc/<pid>/stat; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    // The command name (field 2) may hold spaces; fields are counted after its closing paren.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** USER_HZ, 100 on every Linux the project runs on. */
const CLOCK_TICKS = 100;
