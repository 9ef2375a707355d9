// Database commands counted by FerretDB itself (MongoDB's serverStatus has the same field): every
// client's commands, the worker processes' included, without touching them.
import type { Db } from 'mongodb';

/** Commands every connected client sends on its own (heartbeats, handshakes) and our own probe. */
const NOT_WORK = new Set([
  'hello',
  'isMaster',
  'ismaster',
  'ping',
  'serverStatus',
  'endSessions',
  'unknown',
  'buildInfo',
  'saslStart',
  'saslContinue',
  'getParameter',
]);

/** How many times a command ran, and how many of those failed (a duplicate key, a timeout...). */
export interface CommandCount {
  total: number;
  failed: number;
}
export type Commands = Map<string, CommandCount>;

/** The server's command counters since it started, by command name, without the clients' own chatter. */
export async function commandTotals(db: Db): Promise<Commands> {
  const status = await db.admin().command({ serverStatus: 1 });
  const commands = (status.metrics?.commands ?? {}) as Record<string, CommandCount>;
  return new Map(
    Object.entries(commands)
      .filter(([name]) => !NOT_WORK.has(name))
      .map(([name, c]) => [name, { total: c.total, failed: c.failed }]),
  );
}

/** The commands between two readings, divided by `per` (requests, runs...; at least 1). */
export function commandsPer(before: Commands, after: Commands, per: number): Commands {
  const result: Commands = new Map();
  for (const [name, { total, failed }] of after) {
    const was = before.get(name) ?? { total: 0, failed: 0 };
    const n = Math.max(1, per);
    if (total > was.total) result.set(name, { total: (total - was.total) / n, failed: (failed - was.failed) / n });
  }
  return result;
}

export const commandSum = (m: Commands) => [...m.values()].reduce((a, c) => a + c.total, 0);
export const two = (n: number) => Number(n.toFixed(2));
export const describeCommands = (m: Commands) =>
  [...m]
    .sort((a, b) => b[1].total - a[1].total)
    .map(([name, c]) => `${name} ${two(c.total)}${c.failed > 0 ? ` (${two(c.failed)} failed)` : ''}`)
    .join(', ') || 'none';
