import type { ErrorRecord } from '../src/errors.js';
import { recordFinal } from '../src/output/finalize.js';
import type { JobData } from '../src/queue/job-data.js';
import { finalJob, type JobContext } from './context.js';
import type { ProcessorDeps } from './deps.js';

/** Gives a job that ends without an image its final record (sidecar, manifest line, batch state). */
export async function finalFailure(
  deps: ProcessorDeps,
  ctx: JobContext,
  o: { error: ErrorRecord; startedAt: number | null; data?: JobData },
): Promise<void> {
  const data = o.data ?? ctx.data;
  await recordFinal(deps, finalJob(ctx, data), {
    status: 'failed',
    file: null,
    bytes: null,
    sha256: null,
    seed: data.seed,
    credits: 0,
    error: o.error,
    startedAt: o.startedAt,
  });
}
