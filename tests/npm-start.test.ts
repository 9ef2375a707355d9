import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from './helpers/harness.js';
import { processTree, survivors } from './helpers/process-tree.js';

// `npm start` and `npm run db` as a person runs them: npm, its shell, node and FerretDB, each in
// a process group of its own here, as a terminal's foreground job is.

const started: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, 'SIGKILL');
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function npm(args: string[], env: Record<string, string>) {
  const dataDir = await mkdtemp(join(tmpdir(), 'npm-start-'));
  dirs.push(dataDir);
  const child = spawn('npm', args, {
    detached: true,
    // Development, as on a developer's machine: pretty logs through pino-pretty's worker thread.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOCAL_DB_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal }));
  return { child, exited, output: () => output };
}

async function npmStart() {
  const port = await freePort();
  const p = await npm(['start'], { PORT: String(port) });
  const health = `http://127.0.0.1:${port}/healthz`;
  await waitFor(async () => (await fetch(health).catch(() => undefined))?.ok, {
    timeoutMs: 60_000,
    what: `npm start to serve ${health}; output so far:\n${p.output()}`,
  });
  return { ...p, health };
}

/** After the signal: every process of the tree ends, within a deadline. */
async function expectAllGone(tree: ReturnType<typeof processTree>) {
  await waitFor(async () => survivors(tree).length === 0, {
    timeoutMs: 20_000,
    what: `the whole tree to end: ${JSON.stringify(survivors(tree))}`,
  });
}

describe('npm start stops cleanly', () => {
  it('Ctrl-C (SIGINT to the foreground process group) drains, exits 0 and leaves no process behind', async () => {
    const p = await npmStart();
    const tree = processTree(p.child.pid!);
    // npm, node and FerretDB at least (a shell between npm and node when it does not exec).
    expect(tree.map((t) => t.command)).toEqual(expect.arrayContaining(['npm start', 'node', 'ferretdb']));
    process.kill(-p.child.pid!, 'SIGINT');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    await expectAllGone(tree);
    expect(p.output()).toContain('shutting down');
    expect(p.output()).toMatch(/\bstopped\b/);
    expect(p.output()).not.toContain('second stop request');
    expect(await fetch(p.health).catch(() => 'refused')).toBe('refused');
    // Logs carry ISO times (pino-pretty shows the time of day of the ISO stamp).
    expect(p.output()).toMatch(/\[\d\d:\d\d:\d\d\.\d{3}\] INFO/);
    // node_modules was installed by `npm ci` (stamped): `npm start` does not install it again.
    expect(p.output()).not.toContain('installing dependencies');
  }, 120_000);

  it('SIGTERM to the npm process alone drains, exits 0 and leaves no process behind', async () => {
    const p = await npmStart();
    const tree = processTree(p.child.pid!);
    expect(tree.map((t) => t.command)).toEqual(expect.arrayContaining(['npm start', 'node', 'ferretdb']));
    process.kill(p.child.pid!, 'SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    await expectAllGone(tree);
    expect(p.output()).toContain('shutting down');
    expect(p.output()).toMatch(/\bstopped\b/);
    expect(await fetch(p.health).catch(() => 'refused')).toBe('refused');
  }, 120_000);
});

describe('npm run db', () => {
  const uriOf = (output: string) => output.match(/export MONGODB_URI=(\S+)/)?.[1];

  it('serves on LOCAL_DB_PORT, the same URI at every start, and stops on SIGTERM', async () => {
    const port = await freePort();
    const uris: string[] = [];
    for (let i = 0; i < 2; i++) {
      const p = await npm(['run', 'db'], { LOCAL_DB_PORT: String(port) });
      uris.push(await waitFor(async () => uriOf(p.output()), { timeoutMs: 60_000, what: 'the printed URI' }));
      const tree = processTree(p.child.pid!);
      process.kill(p.child.pid!, 'SIGTERM');
      expect({ ...(await p.exited), output: p.output() }).toMatchObject({ code: 0, signal: null });
      await expectAllGone(tree);
    }
    expect(uris).toEqual([`mongodb://127.0.0.1:${port}/cronjobs`, `mongodb://127.0.0.1:${port}/cronjobs`]);
  }, 120_000);

  it('says which port is busy and how to choose another, and exits 1', async () => {
    const holder = createServer();
    await new Promise<void>((ok) => holder.listen(0, '127.0.0.1', ok));
    const port = (holder.address() as { port: number }).port;
    try {
      const p = await npm(['run', 'db'], { LOCAL_DB_PORT: String(port) });
      expect((await p.exited).code).toBe(1);
      expect(p.output()).toContain(`Port ${port} on 127.0.0.1 is in use`);
      expect(p.output()).toContain('set LOCAL_DB_PORT to a free port');
    } finally {
      holder.close();
    }
  }, 60_000);
});
