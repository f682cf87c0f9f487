import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import type { JobData } from '../src/queue/job-data.js';
import { recordFinal, type FinalizeDeps } from '../src/output/finalize.js';

export interface StalledDeps extends FinalizeDeps {
  logger: Logger;
}

/**
 * A job BullMQ failed by itself (it stalled more often than allowed) never reached our processor's
 * error handling: give it its final record so the manifest and the batch counts see it.
 */
export function recordStalledFailures(deps: StalledDeps) {
  return async (job: Job<JobData> | undefined, err: Error): Promise<void> => {
    if (!job?.id || !/stalled|lock/i.test(err.message)) return;
    try {
      if ((await job.getState()) !== 'failed') return;
      await recordFinal(
        deps,
        { id: job.id, attemptsMade: job.attemptsMade, data: job.data },
        {
          status: 'failed',
          file: null,
          bytes: null,
          sha256: null,
          seed: job.data.seed,
          credits: 0,
          startedAt: job.processedOn ?? null,
          error: { class: 'stalled', status: null, name: 'stalled', message: err.message },
        },
      );
    } catch (e) {
      deps.logger.error({ err: (e as Error).message, jobId: job.id }, 'could not record a stalled job');
    }
  };
}
