import { MongoBackend } from '@agendajs/mongo-backend';
import { Agenda } from 'agenda';
import type { Connection } from 'mongoose';
import type { Env } from '../env.js';

export const AGENDA_COLLECTION = 'agendaJobs';

/**
 * An Agenda on an already connected mongoose connection. Connecting first matters: given an
 * address instead, Agenda connects in its constructor and an unreachable database becomes an
 * unhandled rejection. Creating it starts no timer; only `start()` makes it a worker.
 */
export function createAgenda(conn: Connection, config: Pick<Env, 'AGENDA_PROCESS_EVERY_MS' | 'WORKER_NAME'>): Agenda {
  if (!conn.db) throw new Error('createAgenda needs a connected mongoose connection');
  return new Agenda({
    backend: new MongoBackend({ mongo: conn.db, collection: AGENDA_COLLECTION }),
    name: config.WORKER_NAME,
    processEvery: config.AGENDA_PROCESS_EVERY_MS,
  });
}
