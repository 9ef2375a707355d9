import { type Connection, Schema } from 'mongoose';

export const AUDIT_ACTIONS = ['create', 'update', 'delete', 'run-now'] as const;

const auditLogSchema = new Schema(
  {
    actorId: { type: String, required: true },
    action: { type: String, enum: AUDIT_ACTIONS, required: true },
    jobId: { type: Schema.Types.ObjectId, required: true },
    ownerId: { type: String, required: true },
    /** The fields the request changed, for updates. */
    changes: { type: Schema.Types.Mixed, default: null },
    at: { type: Date, required: true },
  },
  { collection: 'audit_logs', versionKey: false },
);

auditLogSchema.index({ at: 1 });

export const auditLogModel = (conn: Connection) => conn.model('AuditLog', auditLogSchema);
