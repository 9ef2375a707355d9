import type { JobDoc } from '../models/cron-job.model.js';
import type { RunDoc } from '../models/run.model.js';
import { queueRun } from './agenda.js';
import { executeLocal, type RunnerDeps } from './runner.js';

interface Waiting {
  run: RunDoc;
  job: JobDoc;
}

/**
 * The runs this worker's fires queued, executed here, at most `concurrency` at once: a fire of
 * its partitions hands them over in bulk (no Agenda job each), and those that can start together
 * are marked running with one write. On stop, runs not yet started are handed to Agenda, so
 * another worker takes them at once rather than after the recovery sweep finds them.
 */
export class LocalRuns {
  private readonly waiting: Waiting[] = [];
  private going = 0;
  private stopped = false;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly concurrency: number,
  ) {}

  /** Runs waiting for a free slot, and runs going. */
  get size() {
    return { waiting: this.waiting.length, going: this.going };
  }

  enqueue(runs: Waiting[]): void {
    this.waiting.push(...runs);
    this.pump();
  }

  private pump() {
    if (this.stopped) return;
    const free = this.concurrency - this.going;
    if (free <= 0 || !this.waiting.length) return;
    const batch = this.waiting.splice(0, free);
    this.going += batch.length;
    for (const item of batch) void this.runOne(item);
  }

  private async runOne({ run, job }: Waiting) {
    const log = this.deps.logger.child({ jobId: String(run.jobId), runId: String(run._id) });
    try {
      // Grouped with the other runs starting now; false when the run was cancelled (its job deleted).
      if (await this.deps.writes.start(run)) await executeLocal(this.deps, run, job);
      else log.info('run no longer queued; not started');
    } catch (error) {
      // The database failed: the run stays queued or running, for the recovery sweep.
      log.warn({ err: error }, 'run failed to start or finish');
    } finally {
      this.going--;
      this.pump();
    }
  }

  /**
   * Stops starting runs; those still waiting are handed to Agenda for any worker. Returns how
   * many were handed over. The runs going are the shutdown's to wait for or interrupt.
   */
  async stop(): Promise<number> {
    this.stopped = true;
    const left = this.waiting.splice(0);
    for (const { run, job } of left) {
      await this.deps.models.Run.updateOne({ _id: run._id, status: 'queued' }, { $set: { worker: null } });
      await queueRun(this.deps.agenda, { id: String(job._id), type: run.type }, String(run._id));
    }
    return left.length;
  }
}
