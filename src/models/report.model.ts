import { type Connection, Schema } from 'mongoose';

const reportSchema = new Schema(
  {
    /** The run that produced the report; unique, so a retried run overwrites instead of duplicating. */
    runId: { type: Schema.Types.ObjectId, required: true },
    jobId: { type: Schema.Types.ObjectId, required: true },
    ownerId: { type: String, required: true },
    type: { type: String, required: true },
    period: { type: String, required: true },
    from: { type: Date, required: true },
    to: { type: Date, required: true },
    stats: { type: Schema.Types.Mixed, required: true },
    createdAt: { type: Date, required: true },
  },
  { collection: 'reports', versionKey: false, minimize: false },
);

reportSchema.index({ runId: 1 }, { unique: true });
reportSchema.index({ ownerId: 1, createdAt: -1 });

export const reportModel = (conn: Connection) => conn.model('Report', reportSchema);
