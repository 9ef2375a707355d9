import { MongoBackend } from '@agendajs/mongo-backend';
import { Agenda, InMemoryNotificationChannel } from 'agenda';
import type { Connection, Types } from 'mongoose';
import { createMissingIndexes } from '../db/index.js';
import type { Env } from '../env.js';
import type { RunJobData } from './deps.js';

export const AGENDA_COLLECTION = 'agendaJobs';

/**
 * The indexes of Agenda's collection: the one MongoBackend would create (findAndLockNextJobIndex),
 * plus ours for the lookups of a cron job's runs by data.jobId.
 */
export const AGENDA_INDEXES = [
  { key: { name: 1, nextRunAt: 1, priority: -1, lockedAt: 1, disabled: 1 }, name: 'findAndLockNextJobIndex' },
  { key: { 'data.jobId': 1 }, name: 'cronJobIdIndex' },
] as const;

/** The fields of Agenda's documents the scheduler reads itself. */
interface AgendaJobDoc {
  _id: Types.ObjectId;
  name: string;
  data?: Partial<RunJobData>;
  nextRunAt?: Date | null;
  lockedAt?: Date | null;
}

/** Agenda's collection, for the queries Agenda has no method for. */
export const agendaJobs = (conn: Connection) => conn.collection<AgendaJobDoc>(AGENDA_COLLECTION);

/** Queues the one-off Agenda job that executes a run, named by the job's type. */
export async function queueRun(agenda: Agenda, job: { id: string; type: string }, runId: string): Promise<void> {
  await agenda.now<RunJobData>(job.type, { jobId: job.id, runId });
}

/** Removes the Agenda jobs of a cron job's runs still queued (it was deleted). */
export async function cancelQueuedRuns(agenda: Agenda, jobId: string): Promise<number> {
  return agenda.cancel({ data: { jobId } });
}

/**
 * An Agenda on an already connected mongoose connection, ready to use. Connecting first
 * matters: given an address, Agenda connects in its constructor and an unreachable database
 * becomes an unhandled rejection. For the same reason its index is created here (awaited,
 * errors surfacing) rather than by the backend's connect, whose failure nothing can catch.
 * Creating it starts no timer; only `start()` makes it a worker.
 */
export async function createAgenda(
  conn: Connection,
  config: Pick<Env, 'AGENDA_PROCESS_EVERY_MS' | 'WORKER_NAME'>,
): Promise<Agenda> {
  if (!conn.db) throw new Error('createAgenda needs a connected mongoose connection');
  const jobs = conn.db.collection(AGENDA_COLLECTION);
  await createMissingIndexes(jobs, AGENDA_INDEXES);
  const agenda = new Agenda({
    backend: new MongoBackend({ mongo: conn.db, collection: AGENDA_COLLECTION, ensureIndex: false }),
    name: config.WORKER_NAME,
    processEvery: config.AGENDA_PROCESS_EVERY_MS,
    // A run a fire queues is taken by the same worker at once instead of at its next poll
    // (up to processEvery later). Other workers still find it by polling; in a process that is
    // not a worker (the API alone) the channel is never connected and publishes nothing.
    notificationChannel: new InMemoryNotificationChannel(),
  });
  await agenda.ready;
  return agenda;
}

/**
 * When Agenda last polled for work: each pass of its loop (every processEvery) sets the next
 * scan time before it queries. Agenda keeps this private (pinned at 6.2.6); undefined when not started.
 */
export function lastPollAt(agenda: Agenda): number | undefined {
  const processor = (agenda as unknown as { jobProcessor?: { nextScanAt?: Date; processEvery?: number } }).jobProcessor;
  if (!processor?.nextScanAt || processor.processEvery === undefined) return undefined;
  return processor.nextScanAt.getTime() - processor.processEvery;
}

interface QueueFiller {
  isRunning: boolean;
  jobQueueFilling(name: string): Promise<void>;
}

/**
 * One lock chain per job name at a time. Agenda 6.2.6 starts a chain (lock one job, then call
 * itself for the next) on every poll and on every notification, so a burst of runs queued by the
 * dispatcher ran one chain per run side by side, each ending with a lock query that finds
 * nothing; on the local database every lock query reads all queued runs. Here a call made while a chain of
 * that name is going only asks it to go round once more, and returns, so its caller starts the
 * runs already locked instead of waiting for the whole chain. Agenda is pinned at 6.2.6: the
 * processor and its method are private (checked at start).
 */
export function coalesceLockChains(agenda: Agenda): void {
  const processor = (agenda as unknown as { jobProcessor?: QueueFiller }).jobProcessor;
  if (typeof processor?.jobQueueFilling !== 'function')
    throw new Error('Agenda has no jobProcessor.jobQueueFilling: check the pinned version');
  const fill = processor.jobQueueFilling.bind(processor);
  const chains = new Map<string, { again: boolean }>();
  processor.jobQueueFilling = async (name: string) => {
    const going = chains.get(name);
    if (going) {
      going.again = true;
      return;
    }
    const chain = { again: true };
    chains.set(name, chain);
    try {
      // Each pass locks at most one job: its recursive call lands here and only sets `again`.
      while (chain.again && processor.isRunning) {
        chain.again = false;
        await fill(name);
      }
    } finally {
      chains.delete(name);
    }
  };
}
