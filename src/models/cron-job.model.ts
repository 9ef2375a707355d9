import { type Connection, type InferSchemaType, Schema, type Types } from 'mongoose';
import { DEFAULT_JOB_DEFAULTS, MISFIRE_POLICIES, OVERLAP_POLICIES } from '../jobs/job-policies.js';
import { bucketOf } from '../scheduler/buckets.js';

export const JOB_STATUSES = ['idle', 'running', 'failed', 'paused'] as const;

/** The fields a job's owner writes; the service alone sets the others. Their order is part of the ETag. */
export const WRITABLE_FIELDS = [
  'name',
  'type',
  'cron',
  'timezone',
  'payload',
  'enabled',
  'overlap',
  'misfirePolicy',
] as const;

const cronJobSchema = new Schema(
  {
    name: { type: String, required: true },
    type: { type: String, required: true },
    cron: { type: String, required: true },
    timezone: { type: String, required: true, default: 'UTC' },
    payload: { type: Schema.Types.Mixed, required: true, default: {} },
    enabled: { type: Boolean, required: true, default: true },
    ownerId: { type: String, required: true },
    lastRunAt: { type: Date, default: null },
    nextRunAt: { type: Date, default: null },
    status: { type: String, enum: JOB_STATUSES, required: true, default: 'idle' },
    overlap: { type: String, enum: OVERLAP_POLICIES, required: true, default: DEFAULT_JOB_DEFAULTS.overlap },
    misfirePolicy: {
      type: String,
      enum: MISFIRE_POLICIES,
      required: true,
      default: DEFAULT_JOB_DEFAULTS.misfirePolicy,
    },
    /** Why the service paused the job itself (failures in a row); cleared on resume. */
    pausedReason: { type: String, default: null },
    /** Scheduled runs that failed in a row; reset by a success and on resume. */
    consecutiveFailures: { type: Number, required: true, default: 0 },
    /**
     * Slots after this instant are the job's to account for: set on create, resume and on a
     * change of cron or timezone, so slots of a paused period or an old cron are not "missed".
     */
    slotsFrom: { type: Date, required: true, default: () => new Date() },
    /** The latest slot a worker has accounted for (run, missed or skipped). */
    lastSlotAt: { type: Date, default: null },
    /**
     * The latest scheduled (or catch-up) run and the latest manual run: the runs the overlap rule
     * looks at, by id, instead of searching the job's whole run history on every fire.
     */
    lastScheduledRunId: { type: Schema.Types.ObjectId, default: null },
    lastManualRunId: { type: Schema.Types.ObjectId, default: null },
    /**
     * The verified email of whoever last set the payload (token claim), so payload rules that
     * allow "your own address" can be checked again at run time, without a token.
     */
    payloadAuthorEmail: { type: String, default: null },
    /**
     * Which firing partition the job belongs to, through a fixed bucket derived from its id
     * (src/scheduler/leases.ts). Null on a document imported without it; reconcile sets it.
     */
    bucket: {
      type: Number,
      default: function (this: { _id: Types.ObjectId }) {
        return bucketOf(this._id);
      },
    },
  },
  // `minimize: false` keeps an empty payload as {} instead of dropping the field.
  { collection: 'cron_jobs', timestamps: true, minimize: false, versionKey: false },
);

cronJobSchema.index({ ownerId: 1, name: 1 }, { unique: true });
cronJobSchema.index({ enabled: 1, nextRunAt: 1 });
// A tick's query: the due jobs of the buckets of the partitions a worker holds.
cronJobSchema.index({ bucket: 1, nextRunAt: 1 });
// Cursor pagination walks _id within an owner.
cronJobSchema.index({ ownerId: 1, _id: 1 });

// A Mixed path infers as `any`; a payload is always an object (validated per type).
export type CronJob = Omit<InferSchemaType<typeof cronJobSchema>, 'payload'> & {
  payload: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
};
/** A cron_jobs document as lean() reads it. */
export type JobDoc = CronJob & { _id: Types.ObjectId };
/** What a job's owner writes. */
export type JobFields = Pick<CronJob, (typeof WRITABLE_FIELDS)[number]>;

export const cronJobModel = (conn: Connection) => conn.model('CronJob', cronJobSchema);
