import mongoose from 'mongoose';
import { sleep } from '../lib/async.js';
import type { JobDoc } from '../models/cron-job.model.js';
import { bucketRanges } from './buckets.js';
import type { SchedulerDeps } from './deps.js';
import { type BatchResult, fireBatch, type RunSink } from './fire.js';

/** Jobs fired with one insert of runs and one bulk write of marks. */
export const FIRE_BATCH = 500;

/** A tick looks a little past the second it is for, so a slot is never read a hair too early. */
const TICK_OFFSET_MS = 5;

/**
 * One tick for some partitions: the jobs of their buckets whose next fire has come, read with
 * one query (an index range per run of adjacent buckets), fired in batches. Paused jobs have no
 * next fire, so they are never read.
 */
export async function tick(
  deps: SchedulerDeps,
  partitions: number[],
  sink: RunSink,
  now = new Date(),
): Promise<BatchResult & { due: number }> {
  const total: BatchResult & { due: number } = { due: 0, queued: 0, missed: 0, skipped: 0, duplicates: 0 };
  if (!partitions.length) return total;
  const ranges = bucketRanges(partitions, deps.config.SCHEDULER_PARTITIONS).map(([from, to]) => ({
    bucket: mongoose.trusted({ $gte: from, $lt: to }),
    nextRunAt: mongoose.trusted({ $lte: now }),
  }));
  const due = await deps.models.CronJob.find(ranges.length === 1 ? ranges[0]! : { $or: ranges }).lean<JobDoc[]>();
  total.due = due.length;
  for (let i = 0; i < due.length; i += FIRE_BATCH) {
    const batch = await fireBatch(deps, due.slice(i, i + FIRE_BATCH), now, sink, deps.config.WORKER_NAME).catch(
      (error: unknown) => {
        // The next tick tries these jobs again: their next fire is still due.
        deps.logger.warn({ err: error, jobs: Math.min(FIRE_BATCH, due.length - i) }, 'fire failed');
        return null;
      },
    );
    if (!batch) continue;
    total.queued += batch.queued;
    total.missed += batch.missed;
    total.skipped += batch.skipped;
    total.duplicates += batch.duplicates;
  }
  return total;
}

/**
 * Ticks at each whole second (cron slots are whole seconds) for the partitions this worker
 * holds at that moment, until `signal` aborts. A tick that takes longer than a second (a burst)
 * delays the next one; the slots it would have read are found by the next, still within the grace.
 */
export async function runTicks(
  deps: SchedulerDeps,
  partitions: () => number[],
  sink: RunSink,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    const at = Math.floor(Date.now() / 1000) * 1000 + 1000 + TICK_OFFSET_MS;
    await sleep(at - Date.now(), signal);
    if (signal.aborted) break;
    await tick(deps, partitions(), sink).catch((error) => deps.logger.warn({ err: error }, 'tick failed'));
  }
}
