import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bodies, type Harness, startHarness, waitFor } from './helpers/harness.js';
import { runIdOf, type Smtp, startSmtp } from './helpers/smtp.js';

// Per-type policy as an operator would set it, small enough for tests to see every branch.
const POLICY = { maxAttempts: 2, backoffMs: 100, timeoutMs: 2000, lockLifetimeMs: 3000, pauseAfterFailures: 2 };

let smtp: Smtp;
let h: Harness;
beforeAll(async () => {
  smtp = await startSmtp();
  h = await startHarness({
    env: { SMTP_URL: smtp.url, MISFIRE_GRACE_MS: '1000', JOB_TYPE_POLICIES: JSON.stringify({ sendEmail: POLICY }) },
  });
});
afterAll(async () => {
  await h.stop();
  await smtp.close();
});

const runsOf = (id: string) => h.scheduler.models.Run.find({ jobId: id }).sort({ scheduledFor: 1, _id: 1 }).lean();
const emailTo = (to: string, name?: string) => {
  const body = bodies.sendEmail(name);
  return { ...body, payload: { ...body.payload, to } };
};
/** Real time passing is the scenario here (a worker down), not a wait for something to happen. */
const downtime = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('misfire policy: slots no worker fired in time', () => {
  it('runOnce makes one catch-up run, skip makes none; every missed slot is recorded; both are back on their cron', async () => {
    const api = h.client('misfire');
    // A cron of chosen seconds: three slots during the downtime, then one after it.
    const t0 = Math.ceil(Date.now() / 1000) + 1;
    const at = (s: number) => new Date((t0 + s) * 1000);
    const cron = `${[2, 3, 4, 9].map((s) => (t0 + s) % 60).join(',')} * * * * *`;
    const { data: once } = await api.POST('/api/cron/jobs', {
      body: { ...bodies.generateReport('runs-once'), cron, timezone: 'UTC', misfirePolicy: 'runOnce' },
    });
    const { data: skip } = await api.POST('/api/cron/jobs', {
      body: { ...bodies.generateReport('skips'), cron, timezone: 'UTC', misfirePolicy: 'skip' },
    });
    expect(once).toMatchObject({ misfirePolicy: 'runOnce', overlap: 'forbid' });
    expect(skip).toMatchObject({ misfirePolicy: 'skip' });

    // No worker until two seconds after the third slot: all three are missed.
    await downtime(at(6).getTime() - Date.now());
    await h.scheduler.startWorker();
    const back = (id: string) =>
      waitFor(
        async () => {
          const runs = await runsOf(id);
          return (
            runs.some(
              (r) =>
                r.trigger === 'schedule' && r.scheduledFor.getTime() === at(9).getTime() && r.status === 'succeeded',
            ) && runs
          );
        },
        { what: 'the slot after the downtime to run' },
      );

    const onceRuns = await back(once!.id);
    const view = (runs: typeof onceRuns) =>
      runs.map((r) => [r.scheduledFor.getTime() - t0 * 1000, r.trigger, r.status]);
    expect(view(onceRuns)).toEqual([
      [2000, 'schedule', 'missed'],
      [3000, 'schedule', 'missed'],
      [4000, 'schedule', 'missed'],
      [4000, 'catchup', 'succeeded'],
      [9000, 'schedule', 'succeeded'],
    ]);
    expect(onceRuns[0]!.error).toMatch(/no worker fired this slot in time/);

    const skipRuns = await back(skip!.id);
    expect(view(skipRuns)).toEqual([
      [2000, 'schedule', 'missed'],
      [3000, 'schedule', 'missed'],
      [4000, 'schedule', 'missed'],
      [9000, 'schedule', 'succeeded'],
    ]);
  });
});

describe('overlap policy: a slot that comes while the previous run is still going', () => {
  it('forbid records it as skipped and never runs two at once; allow runs them side by side', async () => {
    await h.scheduler.startWorker();
    const api = h.client('overlap');
    const slow = { ...emailTo('delay-1500@example.com'), cron: '* * * * * *', timezone: 'UTC' };
    const { data: forbid } = await api.POST('/api/cron/jobs', { body: { ...slow, name: 'forbid', overlap: 'forbid' } });
    const { data: allow } = await api.POST('/api/cron/jobs', { body: { ...slow, name: 'allow', overlap: 'allow' } });

    const enough = (id: string, status: string, n: number) =>
      waitFor(async () => (await runsOf(id)).filter((r) => r.status === status).length >= n, {
        what: `${n} ${status} runs`,
        timeoutMs: 20_000,
      });
    await enough(forbid!.id, 'skipped', 2);
    await enough(forbid!.id, 'succeeded', 2);
    await enough(allow!.id, 'succeeded', 3);
    for (const id of [forbid!.id, allow!.id])
      await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id } }, body: { enabled: false } });
    const settled = (id: string) =>
      waitFor(
        async () => {
          const runs = await runsOf(id);
          return runs.every((r) => r.status !== 'queued' && r.status !== 'running') && runs;
        },
        { what: 'runs to settle' },
      );

    const intervals = (runs: Awaited<ReturnType<typeof runsOf>>) =>
      runs
        .filter((r) => r.startedAt && r.finishedAt)
        .map((r) => [r.startedAt!.getTime(), r.finishedAt!.getTime()] as const)
        .sort((a, b) => a[0] - b[0]);
    const overlapping = (spans: (readonly [number, number])[]) =>
      spans.some((s, i) => i > 0 && s[0] < spans[i - 1]![1]);

    const forbidRuns = await settled(forbid!.id);
    expect(overlapping(intervals(forbidRuns))).toBe(false);
    const skipped = forbidRuns.filter((r) => r.status === 'skipped');
    expect(skipped[0]!.error).toMatch(/previous run [0-9a-f]{24} was still going/);
    // Every slot of the window is accounted for: run or skipped, none twice.
    const slots = forbidRuns.map((r) => r.scheduledFor.getTime());
    expect(new Set(slots).size).toBe(slots.length);

    const allowRuns = await settled(allow!.id);
    expect(allowRuns.some((r) => r.status === 'skipped')).toBe(false);
    expect(overlapping(intervals(allowRuns))).toBe(true);
  });

  it('forbid also waits for a manual run still going: the slot during it is skipped naming that run', async () => {
    await h.scheduler.startWorker();
    const api = h.client('overlap-manual');
    // Slots every 2 s; the manual run takes 3 s, so at least one slot falls inside it.
    const { data: job } = await api.POST('/api/cron/jobs', {
      body: { ...emailTo('delay-3000@example.com'), name: 'manual-blocks', cron: '*/2 * * * * *', timezone: 'UTC' },
    });
    await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id: job!.id } }, body: { enabled: false } });
    const { data: manual } = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    await waitFor(async () => (await h.scheduler.models.Run.findById(manual!.id).lean())?.status === 'running', {
      what: 'the manual run to start',
    });
    await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id: job!.id } }, body: { enabled: true } });
    const skipped = await waitFor(async () => (await runsOf(job!.id)).find((r) => r.status === 'skipped'), {
      what: 'a slot skipped during the manual run',
    });
    expect(skipped.error).toBe(`the previous run ${manual!.id} was still going (overlap: forbid)`);
    await api.PATCH('/api/cron/jobs/{id}', { params: { path: { id: job!.id } }, body: { enabled: false } });
  });
});

describe('retries, timeouts and automatic pause', () => {
  beforeAll(() => h.scheduler.startWorker());

  const runNow = async (sub: string, to: string) => {
    const api = h.client(sub);
    const { data: job } = await api.POST('/api/cron/jobs', { body: emailTo(to) });
    const { data: queued } = await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    return waitFor(
      async () => {
        const run = await h.scheduler.models.Run.findById(queued!.id).lean();
        return run && !['queued', 'running'].includes(run.status) && run;
      },
      { what: 'the run to end', timeoutMs: 20_000 },
    );
  };

  it('retries a temporary failure with backoff and succeeds, recording the attempts; the message is delivered once', async () => {
    const run = await runNow('retry', 'fail-1@example.com');
    expect(run).toMatchObject({ status: 'succeeded', attempts: 2, error: null });
    const messageId = `<run-${String(run._id)}@cron-jobs>`;
    expect(smtp.attempts.get(messageId)).toBe(2);
    expect(smtp.delivered.filter((d) => runIdOf(d.messageId) === String(run._id))).toHaveLength(1);
  });

  it('gives up after the last attempt with the last error', async () => {
    const run = await runNow('retry-out', 'fail-5@example.com');
    expect(run).toMatchObject({ status: 'failed', attempts: 2 });
    expect(run.error).toMatch(/^attempt 2 of 2: .*try again later/);
  });

  it('does not retry a permanent refusal', async () => {
    const run = await runNow('permanent', 'reject@example.com');
    expect(run).toMatchObject({ status: 'failed', attempts: 1 });
    expect(run.error).toMatch(/refused the message/);
  });

  it('cuts off a hanging handler and records timedOut', async () => {
    const run = await runNow('hang', 'hang@example.com');
    expect(run).toMatchObject({ status: 'timedOut', attempts: 2 });
    expect(run.error).toMatch(/timed out after 2000 ms/);
    expect(run.durationMs).toBeGreaterThanOrEqual(2 * POLICY.timeoutMs);
  });

  it('pauses a job after N failed scheduled runs in a row, says why, and resuming clears it', async () => {
    const api = h.client('auto-pause');
    const { data: job } = await api.POST('/api/cron/jobs', {
      body: { ...emailTo('reject@example.com'), cron: '* * * * * *', timezone: 'UTC' },
    });
    // Manual runs do not count towards the pause.
    for (let i = 0; i < 2; i++) await api.POST('/api/cron/jobs/{id}/run-now', { params: { path: { id: job!.id } } });
    const paused = await waitFor(
      async () => {
        const { data } = await api.GET('/api/cron/jobs/{id}', { params: { path: { id: job!.id } } });
        return data?.enabled === false && data;
      },
      { what: 'the job to pause itself' },
    );
    expect(paused).toMatchObject({ status: 'paused', nextRunAt: null, consecutiveFailures: POLICY.pauseAfterFailures });
    expect(paused.pausedReason).toMatch(/^paused automatically after 2 failed runs in a row; last error: .*refused/);
    const scheduledFailures = (await runsOf(job!.id)).filter((r) => r.trigger === 'schedule' && r.status === 'failed');
    expect(scheduledFailures).toHaveLength(POLICY.pauseAfterFailures);
    expect((await h.scheduler.models.CronJob.findById(job!.id, { nextRunAt: 1 }).lean())?.nextRunAt).toBeNull();

    const { data: resumed } = await api.PATCH('/api/cron/jobs/{id}', {
      params: { path: { id: job!.id } },
      body: { enabled: true, payload: { ...emailTo('ok@example.com').payload } },
    });
    expect(resumed).toMatchObject({ enabled: true, status: 'idle', pausedReason: null, consecutiveFailures: 0 });
    await waitFor(
      async () => (await runsOf(job!.id)).some((r) => r.status === 'succeeded' && r.trigger === 'schedule'),
      { what: 'a run after resume' },
    );
  });
});
