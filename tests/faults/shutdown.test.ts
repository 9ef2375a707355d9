import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { uriWithDb } from '../helpers/harness.js';
import { shutdownUnderLoad } from './scenarios.js';

describe('SIGTERM to a worker while runs are going', () => {
  it('lets runs that can finish finish, interrupts the one that cannot at the drain deadline, exits 0 and leaves nothing locked', async () => {
    const drainMs = 3000;
    const figures = await shutdownUnderLoad({
      uri: uriWithDb(inject('mongoUri'), `t_faults_stop_${randomUUID().slice(0, 8)}`),
      drainMs,
      slowJobs: 3,
    });
    console.info('shutdown under load:', JSON.stringify(figures));
    expect(figures.exitCode).toBe(0);
    expect(figures.inProgressAtSignal).toBeGreaterThanOrEqual(3);
    for (const run of figures.outcomes) {
      if (run.hang)
        expect(run).toMatchObject({
          status: 'interrupted',
          error: expect.stringMatching(/shut down before the run finished/),
        });
      else expect(run.status).toBe('succeeded');
    }
    expect(figures.runningLeft).toBe(0);
    expect(figures.locked).toBe(0);
  }, 180_000);
});
