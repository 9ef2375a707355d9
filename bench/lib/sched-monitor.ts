// Preloaded into a worker process (`node --import tsx --import ./bench/lib/sched-monitor.ts ...`)
// to see where its database time goes without touching src/: every mongoose connection it opens
// gets the driver's command monitoring, and on SIGUSR2 the totals per command and collection are
// written to stderr as one line, `BENCH-COMMANDS <json>`, and the counting starts again.
import { writeSync } from 'node:fs';
import type { CommandStartedEvent } from 'mongodb';
import mongoose from 'mongoose';

/** Per "command collection": how many, their summed and longest duration (ms). */
export type CommandTotals = Record<string, { count: number; ms: number; maxMs: number }>;

export const COMMANDS_LINE = 'BENCH-COMMANDS ';

let totals: CommandTotals = {};

/** The collection a command names (find: 'x', insert: 'x'...), or the database for others. */
const target = (command: Record<string, unknown>, name: string, db: string) =>
  typeof command[name] === 'string' ? String(command[name]) : db;

const originalCreate = mongoose.createConnection.bind(mongoose);
const started = new Map<number, string>();

mongoose.createConnection = ((uri: string, options?: mongoose.ConnectOptions) => {
  const conn = originalCreate(uri, { ...options, monitorCommands: true });
  // Mongoose re-emits the driver's events on the connection when monitorCommands is set.
  conn.on('commandStarted', (e: CommandStartedEvent) =>
    started.set(e.requestId, `${e.commandName} ${target(e.command, e.commandName, e.databaseName)}`),
  );
  const done = (e: { requestId: number; duration: number }) => {
    const key = started.get(e.requestId);
    started.delete(e.requestId);
    if (!key || key.startsWith('hello') || key.startsWith('ping')) return;
    totals[key] ??= { count: 0, ms: 0, maxMs: 0 };
    const t = totals[key];
    t.count++;
    t.ms += e.duration;
    t.maxMs = Math.max(t.maxMs, e.duration);
  };
  conn.on('commandSucceeded', done);
  conn.on('commandFailed', done);
  return conn;
}) as typeof mongoose.createConnection;

process.on('SIGUSR2', () => {
  writeSync(2, `${COMMANDS_LINE}${JSON.stringify(totals)}\n`);
  totals = {};
});
