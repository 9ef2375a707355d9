import { PermanentError, pickSettings, type RunPolicy } from '../jobs/job-type.js';
import { getJobType } from '../jobs/registry.js';
import type { Logger } from '../lib/logger.js';
import type { JobDoc } from '../models/cron-job.model.js';
import type { RunDoc } from '../models/run.model.js';
import type { SchedulerDeps } from './deps.js';

/** An attempt cut off after its type's timeout. */
export class AttemptTimeout extends Error {}

/**
 * One call of the handler of the job's current type on its stored payload, cut off after the
 * type's timeout (throws AttemptTimeout then) or when `stop` aborts.
 */
export async function attemptOnce(
  deps: SchedulerDeps,
  run: RunDoc,
  attempt: number,
  policy: RunPolicy,
  stop: AbortSignal,
  log: Logger,
  /** The job as just read by whoever queued the run; read afresh when absent (a retry, a manual run). */
  read?: JobDoc,
): Promise<Record<string, unknown>> {
  const job = read ?? (await deps.models.CronJob.findById(run.jobId).lean<JobDoc>());
  if (!job) throw new PermanentError('the job was deleted');
  const type = getJobType(job.type);
  if (!type) throw new PermanentError(`job type ${job.type} is no longer registered`);
  const parsed = type.payload.safeParse(job.payload);
  if (!parsed.success) {
    throw new PermanentError(
      `stored payload is invalid for ${type.name}: ` +
        parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
    );
  }
  const controller = new AbortController();
  const onStop = () => controller.abort(stop.reason);
  stop.addEventListener('abort', onStop);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new AttemptTimeout(`timed out after ${policy.timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, policy.timeoutMs);
  });
  try {
    const handling = type.handler(parsed.data, {
      runId: String(run._id),
      jobId: String(job._id),
      ownerId: job.ownerId,
      scheduledFor: run.scheduledFor,
      trigger: run.trigger,
      attempt,
      signal: controller.signal,
      logger: log.child({ attempt }),
      conn: deps.conn,
      models: deps.models,
      settings: pickSettings(deps.config, type.settings),
      payloadAuthorEmail: job.payloadAuthorEmail ?? null,
    });
    // A handler that ignores the signal goes on in the background; its result is dropped.
    handling.catch(() => undefined);
    const stopped = new Promise<never>((_, reject) =>
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }),
    );
    stopped.catch(() => undefined);
    return await Promise.race([handling, timedOut, stopped]);
  } finally {
    clearTimeout(timer);
    stop.removeEventListener('abort', onStop);
  }
}
