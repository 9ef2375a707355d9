import { describe, expect, it } from 'vitest';
import { databaseOutage } from './scenarios.js';

describe('the database stops for 30 s under a running API and two workers', () => {
  it('answers 503 problem+json fast meanwhile, crashes nothing, and resumes by itself', async () => {
    const figures = await databaseOutage({ dataDir: `.local/fault-db-${process.pid}`, outageMs: 30_000 });
    console.info('database outage:', JSON.stringify(figures));
    expect(figures.apiStatuses).toEqual([503]);
    expect(figures.allProblemJson).toBe(true);
    expect(figures.readyStatuses).toEqual([503]);
    // Bounded by the server-selection timeout (1 s here), far from a hang.
    expect(figures.longestApiResponseMs).toBeLessThan(10_000);
    expect(figures.processesAliveDuring).toBe(figures.processes);
    const a = figures.accounting;
    expect(a.unrecorded).toBe(0);
    expect(a.duplicates).toBe(0);
    expect(a.sideEffectMismatches).toBe(0);
    // Slots of the outage are recorded as missed; runs resumed by themselves once it answered again.
    // (With a slot every 2 s the first fire after it is on time for its own slot, which is then
    // the one run the runOnce policy allows: a catch-up run is only made when that slot is late too.)
    expect(a.byStatus.missed).toBeGreaterThanOrEqual(3 * Math.floor(25_000 / 2000));
    expect(figures.runsBackMs).toBeLessThan(60_000);
  }, 180_000);
});
