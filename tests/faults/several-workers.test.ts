import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { uriWithDb } from '../helpers/harness.js';
import { severalWorkers } from './scenarios.js';

describe('three worker processes on one database', () => {
  it('run each slot once, record every slot, and send exactly one email per successful run', async () => {
    const figures = await severalWorkers({
      uri: uriWithDb(inject('mongoUri'), `t_faults_mw_${randomUUID().slice(0, 8)}`),
      workers: 3,
      jobs: 6,
      cron: '*/2 * * * * *',
      minRunsPerJob: 4,
      timeoutMs: 60_000,
    });
    console.info('several workers:', JSON.stringify(figures));
    const a = figures.accounting;
    expect(a.slots).toBeGreaterThanOrEqual(6 * 4);
    expect(a.unrecorded).toBe(0);
    expect(a.duplicates).toBe(0);
    expect(a.phantom).toBe(0);
    expect(a.sideEffectMismatches).toBe(0);
    expect(a.deliveries).toBe(a.byStatus.succeeded);
    // All three ran to the end and stopped cleanly, leaving nothing running or locked.
    expect(figures.cleanExits).toBe(3);
    expect(a.byStatus.running ?? 0).toBe(0);
    expect(figures.locked).toBe(0);
  }, 180_000);
});
