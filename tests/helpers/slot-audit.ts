import mongoose from 'mongoose';
import type { Models } from '../../src/models/index.js';
import type { RunDoc } from '../../src/models/run.model.js';
import { slotsBetween } from '../../src/scheduler/cron.js';
import { runIdOf, type Smtp } from './smtp.js';

/** A job of the test and the time its pause was answered: its slots are owed up to then. */
export interface PausedJob {
  id: string;
  pausedAt: Date;
}

export interface SlotAudit {
  /** Slots the cron gave between each job's start of accounting and its pause. */
  expected: number;
  /** Of those, slots with no `schedule` record at all: the "never recorded". */
  unrecorded: number;
  /** Slots with more than one `schedule` record. */
  duplicated: number;
  /** `schedule` records at instants the cron never gave, or before the job's accounting began. */
  phantom: number;
  /** `schedule` records for slots after the pause was answered (a fire racing the pause). */
  afterPause: number;
  /** Statuses of the `schedule` records, and of the `catchup` runs apart. */
  byStatus: Record<string, number>;
  catchupByStatus: Record<string, number>;
  emails: EmailAudit;
}

export interface EmailAudit {
  delivered: number;
  succeededRuns: number;
  /** Succeeded runs whose email never arrived. */
  succeededWithoutEmail: number;
  /** Runs whose email arrived more than once. */
  sentTwice: number;
  /** Emails of runs recorded `interrupted`: the worker died after the SMTP server took the message (at-least-once). */
  ofInterruptedRuns: number;
  /** Emails of no known run, or of a run that neither succeeded nor was interrupted. */
  unexplained: number;
}

const countInto = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};

/**
 * Every cron slot in (slotsFrom, pausedAt] of each job must have exactly one record of trigger
 * `schedule` (a run, or a missed/skipped/interrupted record); every succeeded run exactly one
 * email; an email beyond that may only belong to an interrupted run.
 */
export async function auditSlots(models: Models, jobs: PausedJob[], smtp: Smtp): Promise<SlotAudit> {
  const audit: SlotAudit = {
    expected: 0,
    unrecorded: 0,
    duplicated: 0,
    phantom: 0,
    afterPause: 0,
    byStatus: {},
    catchupByStatus: {},
    emails: auditEmails([], smtp),
  };
  const allRuns: RunDoc[] = [];
  for (const { id, pausedAt } of jobs) {
    const job = await models.CronJob.findById(id).lean();
    if (!job) throw new Error(`job ${id} is gone`);
    const from = job.slotsFrom ?? job.createdAt;
    const expected = slotsBetween(job.cron, job.timezone, from, pausedAt, 1_000_000).map((d) => d.getTime());
    const slots = new Set(expected);
    audit.expected += expected.length;
    const runs = await models.Run.find({ jobId: id }).lean<RunDoc[]>();
    allRuns.push(...runs);
    const records = new Map<number, number>();
    for (const run of runs) {
      if (run.trigger === 'catchup') countInto(audit.catchupByStatus, run.status);
      if (run.trigger !== 'schedule') continue;
      countInto(audit.byStatus, run.status);
      const slot = run.scheduledFor.getTime();
      if (slot > pausedAt.getTime()) audit.afterPause++;
      else if (!slots.has(slot)) audit.phantom++;
      else records.set(slot, (records.get(slot) ?? 0) + 1);
    }
    for (const slot of expected) {
      const n = records.get(slot) ?? 0;
      if (n === 0) audit.unrecorded++;
      if (n > 1) audit.duplicated++;
    }
  }
  audit.emails = auditEmails(allRuns, smtp);
  return audit;
}

function auditEmails(runs: RunDoc[], smtp: Smtp): EmailAudit {
  const perRun = new Map<string, number>();
  for (const d of smtp.delivered) {
    const runId = runIdOf(d.messageId) ?? `unknown:${d.messageId}`;
    perRun.set(runId, (perRun.get(runId) ?? 0) + 1);
  }
  const status = new Map(runs.map((r) => [String(r._id), r.status]));
  const audit: EmailAudit = {
    delivered: smtp.delivered.length,
    succeededRuns: 0,
    succeededWithoutEmail: 0,
    sentTwice: 0,
    ofInterruptedRuns: 0,
    unexplained: 0,
  };
  for (const run of runs) {
    if (run.status !== 'succeeded') continue;
    audit.succeededRuns++;
    if (!perRun.has(String(run._id))) audit.succeededWithoutEmail++;
  }
  for (const [runId, n] of perRun) {
    if (n > 1) audit.sentTwice++;
    const of = status.get(runId);
    if (of === 'interrupted') audit.ofInterruptedRuns++;
    else if (of !== 'succeeded') audit.unexplained++;
  }
  return audit;
}

/** Runs of these jobs not finished: queued or running. */
export const openRuns = (models: Models, ids: string[]) =>
  models.Run.find({
    jobId: mongoose.trusted({ $in: ids }),
    status: mongoose.trusted({ $in: ['queued', 'running'] }),
  }).lean<RunDoc[]>();

/**
 * After a kill at `killedAt`: the first slot fired afterwards (a run record created by a live
 * worker, `missed` records aside), or undefined when none was before `until`.
 */
export async function firstFireAfter(models: Models, ids: string[], killedAt: Date, until: Date) {
  const run = await models.Run.findOne({
    jobId: mongoose.trusted({ $in: ids }),
    trigger: mongoose.trusted({ $in: ['schedule', 'catchup'] }),
    status: mongoose.trusted({ $ne: 'missed' }),
    createdAt: mongoose.trusted({ $gt: killedAt, $lte: until }),
  })
    .sort({ createdAt: 1 })
    .lean<RunDoc & { createdAt: Date }>();
  return run ?? undefined;
}

/** How many firing partitions a worker holds, from its own /metrics; undefined when it does not answer. */
export async function firingShare(metricsPort: number): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return undefined;
    const held = /^cron_partitions_held(?:\{[^}]*\})?\s+(\S+)$/m.exec(await res.text());
    return held ? Number(held[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long the jobs a killed worker fired waited for another worker: for each job whose
 * scheduled runs the victim had fired, the first fire after the kill; the longest of those.
 * Undefined when one of them was not fired again before `until`.
 */
export async function failoverAfter(models: Models, victim: string, killedAt: Date, until: Date) {
  const jobs = await models.Run.distinct('jobId', { worker: victim, trigger: 'schedule' });
  let worst = 0;
  for (const jobId of jobs) {
    const next = await firstFireAfter(models, [String(jobId)], killedAt, until);
    if (!next) return undefined;
    worst = Math.max(worst, next.createdAt.getTime() - killedAt.getTime());
  }
  return worst;
}
