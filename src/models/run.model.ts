import { type Connection, type InferSchemaType, Schema, type Types } from 'mongoose';

/**
 * queued, running: not finished. succeeded, failed, timedOut (the last attempt was cut off):
 * the handler's outcome. interrupted: the worker died mid-run. missed: no worker fired the slot
 * in time (misfire policy). skipped: the previous run was still going (overlap forbid).
 * cancelled: the job was deleted before the run started.
 */
export const RUN_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'timedOut',
  'interrupted',
  'missed',
  'skipped',
  'cancelled',
] as const;
/** catchup: the one run a runOnce job makes for slots missed while no worker ran. */
export const RUN_TRIGGERS = ['schedule', 'catchup', 'manual'] as const;

const runSchema = new Schema(
  {
    jobId: { type: Schema.Types.ObjectId, required: true },
    ownerId: { type: String, required: true },
    type: { type: String, required: true },
    /** The cron slot this run is for (or the request time of a manual run). */
    scheduledFor: { type: Date, required: true },
    trigger: { type: String, enum: RUN_TRIGGERS, required: true },
    status: { type: String, enum: RUN_STATUSES, required: true },
    startedAt: { type: Date, default: null },
    finishedAt: { type: Date, default: null },
    durationMs: { type: Number, default: null },
    error: { type: String, default: null },
    /** What the handler reported (e.g. how many documents it deleted). */
    result: { type: Schema.Types.Mixed, default: null },
    worker: { type: String, default: null },
    /** Attempts made so far (retries included). */
    attempts: { type: Number, required: true, default: 0 },
    /** Refreshed while the handler runs; a running run with an old heartbeat lost its worker. */
    heartbeatAt: { type: Date, default: null },
  },
  { collection: 'cron_job_runs', timestamps: true, versionKey: false },
);

// The claim: a second worker firing the same slot fails this insert and skips the slot.
// Unique indexes are enforced on every server, unlike findAndModify's atomicity. The trigger
// is part of the key so a manual run requested at a slot's very instant does not take it.
runSchema.index({ jobId: 1, scheduledFor: 1, trigger: 1 }, { unique: true });
runSchema.index({ jobId: 1, _id: -1 });
runSchema.index({ ownerId: 1, scheduledFor: 1 });
// Runs in progress: of one job (overlap), and of every job (the sweep for dead workers).
runSchema.index({ jobId: 1, status: 1 });
runSchema.index({ status: 1, heartbeatAt: 1 });

export type Run = InferSchemaType<typeof runSchema> & { createdAt: Date; updatedAt: Date };
/** A cron_job_runs document as lean() reads it. */
export type RunDoc = Run & { _id: Types.ObjectId };

export const runModel = (conn: Connection) => conn.model('Run', runSchema);

/**
 * Claims of manual runs, one document per run id. A queued manual run is picked up by
 * whichever worker inserts its claim first; status updates cannot do this where update-with-filter
 * is a read followed by a write (src/db/quirks.ts).
 */
const runClaimSchema = new Schema(
  { _id: { type: Schema.Types.ObjectId, required: true }, worker: { type: String, required: true } },
  { collection: 'cron_job_run_claims', timestamps: { createdAt: true, updatedAt: false }, versionKey: false },
);

export const runClaimModel = (conn: Connection) => conn.model('RunClaim', runClaimSchema);
