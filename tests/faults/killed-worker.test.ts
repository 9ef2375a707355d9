import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { uriWithDb } from '../helpers/harness.js';
import { killedWorker } from './scenarios.js';

describe('kill -9 of the worker running a job', () => {
  it('marks its run interrupted, leaves nothing running or locked, and the schedule resumes on the other worker', async () => {
    const lockLifetimeMs = 3000;
    const figures = await killedWorker({
      uri: uriWithDb(inject('mongoUri'), `t_faults_kill_${randomUUID().slice(0, 8)}`),
      lockLifetimeMs,
    });
    console.info('killed worker:', JSON.stringify(figures));
    expect(figures.interruptedError).toMatch(new RegExp(`worker ${figures.killedWorker} stopped sending heartbeats`));
    expect(figures.nextRunWorker).not.toBe(figures.killedWorker);
    expect(figures.stillRunning).toBe(0);
    expect(figures.jobStatusAfter).not.toBe('running');
    expect(figures.lockedAfter).toBe(0);
    expect(figures.accounting.unrecorded).toBe(0);
    expect(figures.accounting.duplicates).toBe(0);
    expect(figures.accounting.sideEffectMismatches).toBe(0);
  }, 180_000);
});
