import type { RunDoc } from '../models/run.model.js';

/**
 * A worker shows it is alive by writing several times per lock lifetime (a run's heartbeats).
 * One that has been silent for a whole lock lifetime since `lastSign` is taken for dead: killed,
 * or its host lost.
 */
export function silentTooLong(lastSign: Date, lockLifetimeMs: number, now = Date.now()): boolean {
  return lastSign.getTime() < now - lockLifetimeMs;
}

/** Whether the worker executing a running run is dead: no heartbeat (nor start) within the lock lifetime. */
export function workerIsDead(
  run: Pick<RunDoc, 'heartbeatAt' | 'startedAt'>,
  lockLifetimeMs: number,
  now = Date.now(),
): boolean {
  const last = run.heartbeatAt ?? run.startedAt;
  return last != null && silentTooLong(last, lockLifetimeMs, now);
}

/** What a run whose worker died is interrupted with. */
export const deadWorkerReason = (worker: string | null | undefined) =>
  `worker ${worker ?? '?'} stopped sending heartbeats during the run`;
