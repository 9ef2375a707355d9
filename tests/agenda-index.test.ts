import { randomUUID } from 'node:crypto';
import { MongoBackend } from '@agendajs/mongo-backend';
import { Agenda } from 'agenda';
import { describe, expect, inject, it } from 'vitest';
import { connectDb } from '../src/db/index.js';
import { parseEnv } from '../src/env.js';
import { AGENDA_COLLECTION, createAgenda } from '../src/scheduler/agenda.js';

describe('the Agenda collection index', () => {
  it("is the one Agenda's own backend creates, so a database Agenda set up opens cleanly", async () => {
    const config = parseEnv({ NODE_ENV: 'test', WORKER_NAME: 'index-test' });
    const conn = await connectDb(inject('mongoUri'), config, `t_idx_${randomUUID().slice(0, 8)}`);
    try {
      // Agenda left to create its index itself, as an older deployment would have.
      const plain = new Agenda({ backend: new MongoBackend({ mongo: conn.db!, collection: AGENDA_COLLECTION }) });
      await plain.ready;
      const agenda = await createAgenda(conn, config);
      expect(agenda).toBeInstanceOf(Agenda);
      const names = (await conn.db!.collection(AGENDA_COLLECTION).indexes()).map((i) => i.name);
      expect(names).toEqual(expect.arrayContaining(['findAndLockNextJobIndex', 'cronJobIdIndex']));
    } finally {
      await conn.dropDatabase();
      await conn.close();
    }
  });
});
