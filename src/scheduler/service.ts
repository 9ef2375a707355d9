import mongoose, { Types } from 'mongoose';
import type { z } from 'zod';
import { isDuplicateKey } from '../db/index.js';
import { minIntervalOf, pickSettings } from '../jobs/job-type.js';
import { getJobType } from '../jobs/registry.js';
import type { Caller } from '../lib/auth.js';
import { ifMatchSatisfied, jobEtag } from '../lib/etag.js';
import { ApiError, fieldErrors } from '../lib/problem.js';
import type { AUDIT_ACTIONS } from '../models/audit-log.model.js';
import { type JobDoc, type JobFields, WRITABLE_FIELDS } from '../models/cron-job.model.js';
import type { CronPreviewQuery } from '../routes/cron/cron.schemas.js';
import { cancelQueuedRuns, queueRun } from './agenda.js';
import { checkCron, nextFire } from './cron.js';
import { NOT_AN_EDIT, type SchedulerDeps } from './deps.js';
import { accountDueSlots } from './fire.js';
import { previewCron } from './preview.js';
import { recordDeletedJob } from './retention.js';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

const ALL_FIELDS: ReadonlySet<keyof JobFields> = new Set(WRITABLE_FIELDS);

const preconditionFailed = () =>
  new ApiError(
    'precondition-failed',
    'The job changed since you read it (If-Match does not match its ETag); read it again and retry.',
    [{ in: 'header', path: 'If-Match', message: 'does not match the current ETag' }],
  );

const duplicateName = (name: string) =>
  new ApiError('conflict', `You already have a job named "${name}".`, [
    { in: 'body', path: 'name', message: 'already used by another of your jobs' },
  ]);

/**
 * The module route handlers delegate to: it owns the rules (roles, cron limits, payloads),
 * the cron_jobs documents, their Agenda schedules and the audit trail.
 */
export class CronJobService {
  constructor(private readonly deps: SchedulerDeps) {}

  private get m() {
    return this.deps.models;
  }

  /**
   * Checks what a zod schema cannot know statically: that the caller's role may use the type,
   * the configured cron rules, the payload for its type. Only what is being set is checked, so
   * an owner can still pause or rename a job whose cron predates stricter rules, or that an
   * admin gave an admin-only type.
   */
  private validate(caller: Caller, fields: JobFields, changed: ReadonlySet<keyof JobFields>): JobFields {
    const type = getJobType(fields.type);
    if (!type)
      throw new ApiError('invalid-request', `Unknown job type "${fields.type}".`, [
        { in: 'body', path: 'type', message: 'unknown job type' },
      ]);
    if (changed.has('type') && !type.roles.includes(caller.isAdmin ? 'admin' : 'user')) {
      throw new ApiError('forbidden', `Jobs of type "${type.name}" can only be created by: ${type.roles.join(', ')}.`);
    }
    if (changed.has('cron') || changed.has('timezone') || changed.has('type')) {
      const cronProblem = checkCron(fields.cron, fields.timezone, {
        allowSeconds: this.deps.config.CRON_ALLOW_SECONDS,
        minIntervalSeconds: minIntervalOf(type, this.deps.config),
      });
      if (cronProblem)
        throw new ApiError('invalid-request', `Invalid cron: ${cronProblem}.`, [
          { in: 'body', path: 'cron', message: cronProblem },
        ]);
    }
    let payload = fields.payload;
    if (changed.has('payload') || changed.has('type')) {
      const parsed = (type.payload as z.ZodType<Record<string, unknown>>).safeParse(fields.payload);
      if (!parsed.success) {
        const errors = fieldErrors('body', parsed.error).map((e) => ({
          ...e,
          path: e.path ? `payload.${e.path}` : 'payload',
        }));
        throw new ApiError('invalid-request', `The payload is not valid for type "${type.name}".`, errors);
      }
      payload = parsed.data;
      const refusal = type.checkPayload?.(payload, {
        rules: pickSettings(this.deps.config, type.payloadRules),
        authorEmail: caller.email ?? null,
      });
      if (refusal) {
        throw new ApiError(
          'payload-not-allowed',
          `The payload is not allowed: payload.${refusal.path}: ${refusal.message}.`,
          [{ in: 'body', path: `payload.${refusal.path}`, message: refusal.message }],
        );
      }
    }
    return { ...fields, cron: fields.cron.trim(), payload };
  }

  private async find(caller: Caller, id: string): Promise<JobDoc> {
    // Any id that is not a job id (malformed included) is simply not found.
    if (!/^[0-9a-f]{24}$/i.test(id)) throw new ApiError('not-found', 'No job with this id.');
    const filter = caller.isAdmin ? { _id: id } : { _id: id, ownerId: caller.id };
    const job = await this.m.CronJob.findOne(filter).lean<JobDoc>();
    // Another owner's job is reported exactly like a missing one, so ids cannot be probed.
    if (!job) throw new ApiError('not-found', `No job with id ${id}.`);
    return job;
  }

  private async audit(caller: Caller, action: (typeof AUDIT_ACTIONS)[number], job: JobDoc, changes?: object) {
    await this.m.AuditLog.create({
      actorId: caller.id,
      action,
      jobId: job._id,
      ownerId: job.ownerId,
      changes: changes ?? null,
      at: new Date(),
    });
  }

  /** Validates and stores a new job with its next fire; the dispatcher fires it from then on. */
  async create(caller: Caller, input: JobFields): Promise<JobDoc> {
    const fields = this.validate(caller, input, ALL_FIELDS);
    // Counted, then inserted: two creates racing at the cap can both pass (one over).
    const owned = await this.m.CronJob.countDocuments({ ownerId: caller.id });
    if (owned >= this.deps.config.MAX_JOBS_PER_OWNER) {
      throw new ApiError(
        'job-limit-reached',
        `You already have ${owned} jobs, the most one owner may have ` +
          `(${this.deps.config.MAX_JOBS_PER_OWNER}); delete one first.`,
      );
    }
    let job: JobDoc;
    try {
      const created = await this.m.CronJob.create({
        ...fields,
        ownerId: caller.id,
        payloadAuthorEmail: caller.email ?? null,
        ...scheduleState(fields),
      });
      job = created.toObject() as JobDoc;
    } catch (error) {
      if (isDuplicateKey(error)) throw duplicateName(fields.name);
      throw error;
    }
    await this.audit(caller, 'create', job);
    return job;
  }

  async get(caller: Caller, id: string): Promise<JobDoc> {
    return this.find(caller, id);
  }

  async list(
    caller: Caller,
    query: { enabled?: 'true' | 'false'; type?: string; ownerId?: string; limit: number; cursor?: string },
  ): Promise<Page<JobDoc>> {
    if (query.ownerId && !caller.isAdmin && query.ownerId !== caller.id) {
      throw new ApiError('forbidden', 'Only admins can list the jobs of another owner.');
    }
    const filter: Record<string, unknown> = {};
    const ownerId = caller.isAdmin ? query.ownerId : caller.id;
    if (ownerId) filter.ownerId = ownerId;
    if (query.enabled) filter.enabled = query.enabled === 'true';
    if (query.type) filter.type = query.type;
    // sanitizeFilter is on (src/lib/db.ts): our own operators are marked trusted.
    if (query.cursor) filter._id = mongoose.trusted({ $gt: new Types.ObjectId(query.cursor) });
    const items = await this.m.CronJob.find(filter)
      .sort({ _id: 1 })
      .limit(query.limit + 1)
      .lean<JobDoc[]>();
    return page(items, query.limit);
  }

  /**
   * Replaces (PUT) or patches a job. Only the fields that change are written, and only if the
   * job still has the `updatedAt` it was read with, else 409. On MongoDB that makes concurrent
   * edits safe; where conditional updates are not atomic (src/db/quirks.ts) two edits that race
   * within milliseconds can both pass (the schedule sync still converges on the last one).
   */
  async update(
    caller: Caller,
    id: string,
    changes: Partial<JobFields>,
    action: 'replace' | 'patch',
    ifMatch?: string,
  ): Promise<JobDoc> {
    const before = await this.find(caller, id);
    if (ifMatch !== undefined && !ifMatchSatisfied(ifMatch, jobEtag(before))) throw preconditionFailed();
    const merged: JobFields = {
      name: before.name,
      type: before.type,
      cron: before.cron,
      timezone: before.timezone,
      payload: before.payload,
      enabled: before.enabled,
      overlap: before.overlap,
      misfirePolicy: before.misfirePolicy,
      ...changes,
    };
    const differs = (key: keyof JobFields) => JSON.stringify(merged[key]) !== JSON.stringify(before[key]);
    const fields = this.validate(caller, merged, new Set([...ALL_FIELDS].filter(differs)));
    const $set: Record<string, unknown> = {};
    for (const key of ALL_FIELDS)
      if (JSON.stringify(fields[key]) !== JSON.stringify(before[key])) $set[key] = fields[key];
    // The status changes with `enabled` only; a run going on keeps saying `running`.
    if ('payload' in $set || 'type' in $set) $set.payloadAuthorEmail = caller.email ?? null;
    if ('enabled' in $set) Object.assign($set, scheduleState(fields));
    else if ('cron' in $set || 'timezone' in $set)
      Object.assign($set, {
        slotsFrom: new Date(),
        nextRunAt: fields.enabled ? nextFire(fields.cron, fields.timezone) : null,
      });
    if (Object.keys($set).length === 0) return before;
    let after: JobDoc | null;
    try {
      after = await this.m.CronJob.findOneAndUpdate(
        { _id: before._id, updatedAt: before.updatedAt },
        { $set },
        { returnDocument: 'after' },
      ).lean<JobDoc>();
    } catch (error) {
      if (isDuplicateKey(error)) throw duplicateName(fields.name);
      throw error;
    }
    if (!after) {
      if (await this.m.CronJob.exists({ _id: before._id })) {
        if (ifMatch !== undefined) throw preconditionFailed();
        throw new ApiError('conflict', 'The job was changed by another request meanwhile; read it again and retry.');
      }
      throw new ApiError('not-found', `No job with id ${id}.`);
    }
    // The slots the old schedule owed up to the change (a worker may not have fired them yet, and
    // will not now) are recorded by the schedule as it was; those a worker recorded are refused.
    if ($set.enabled === false || 'cron' in $set || 'timezone' in $set)
      await accountDueSlots(this.deps, before, after.updatedAt);
    await this.audit(caller, 'update', after, { action, ...changes });
    return after;
  }

  async remove(caller: Caller, id: string, ifMatch?: string): Promise<void> {
    const job = await this.find(caller, id);
    if (ifMatch !== undefined && !ifMatchSatisfied(ifMatch, jobEtag(job))) throw preconditionFailed();
    const deletedAt = new Date();
    if (ifMatch === undefined) {
      await this.m.CronJob.deleteOne({ _id: job._id });
    } else {
      // Only the version the client saw (not atomic on every server: src/db/quirks.ts).
      const { deletedCount } = await this.m.CronJob.deleteOne({ _id: job._id, updatedAt: job.updatedAt });
      if (deletedCount === 0) throw preconditionFailed();
    }
    // Its history goes RUNS_KEPT_DAYS after the delete (src/scheduler/retention.ts).
    await recordDeletedJob(this.deps, job._id, deletedAt);
    // Slots due up to the delete that no worker fired are recorded; their runs are cancelled below.
    await accountDueSlots(this.deps, job, deletedAt, async () => {});
    await cancelQueuedRuns(this.deps.agenda, String(job._id));
    // The history stays; manual runs that never started say why they never will.
    await this.m.Run.updateMany(
      { jobId: job._id, status: 'queued' },
      { $set: { status: 'cancelled', error: 'the job was deleted before the run started', finishedAt: new Date() } },
    );
    await this.audit(caller, 'delete', job);
  }

  /** Queues one manual run now, whatever the job's state; the worker executes it. */
  async runNow(caller: Caller, id: string) {
    const job = await this.find(caller, id);
    const run = await this.m.Run.create({
      jobId: job._id,
      ownerId: job.ownerId,
      type: job.type,
      scheduledFor: new Date(),
      trigger: 'manual',
      status: 'queued',
    }).catch((error: unknown) => {
      if (isDuplicateKey(error))
        throw new ApiError('conflict', 'A manual run of this job was requested at this same instant; retry.');
      throw error;
    });
    // Pointed to before it is queued, so a fire that sees it running knows of it.
    await this.m.CronJob.updateOne({ _id: job._id }, { $set: { lastManualRunId: run._id } }, NOT_AN_EDIT);
    await queueRun(this.deps.agenda, { id: String(job._id), type: job.type }, String(run._id));
    await this.audit(caller, 'run-now', job);
    return run.toObject();
  }

  async listRuns(caller: Caller, id: string, query: { limit: number; cursor?: string }) {
    const job = await this.find(caller, id);
    const filter: Record<string, unknown> = { jobId: job._id };
    if (query.cursor) filter._id = mongoose.trusted({ $lt: new Types.ObjectId(query.cursor) });
    const items = await this.m.Run.find(filter)
      .sort({ _id: -1 })
      .limit(query.limit + 1)
      .lean();
    return page(items, query.limit);
  }

  /**
   * The next fires of a cron as a job with it would have them, under the rules for creating one
   * (with `type`, that type's minimum interval too).
   */
  preview(request: z.infer<typeof CronPreviewQuery>) {
    return previewCron(request, {
      allowSeconds: this.deps.config.CRON_ALLOW_SECONDS,
      minIntervalSeconds: minIntervalOf(getJobType(request.type ?? ''), this.deps.config),
    });
  }
}

/**
 * Status and next fire of a job that is being created, resumed or paused. Resuming clears an
 * automatic pause and starts accounting for slots afresh: a paused period has no missed slots.
 */
function scheduleState(fields: Pick<JobFields, 'enabled' | 'cron' | 'timezone'>) {
  return fields.enabled
    ? {
        status: 'idle' as const,
        nextRunAt: nextFire(fields.cron, fields.timezone),
        pausedReason: null,
        consecutiveFailures: 0,
        slotsFrom: new Date(),
      }
    : { status: 'paused' as const, nextRunAt: null };
}

function page<T extends { _id: Types.ObjectId }>(items: T[], limit: number): Page<T> {
  const more = items.length > limit;
  const kept = more ? items.slice(0, limit) : items;
  return { items: kept, nextCursor: more ? String(kept[kept.length - 1]!._id) : null };
}
