import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { jobDataSchema, type JobData } from '../src/queue/job-data.js';
import type { JobRef } from '../src/billing/inflight.js';
import { storeOf, type FinalJob } from '../src/output/finalize.js';
import type { BatchStore } from '../src/output/storage/types.js';
import type { ProcessorDeps } from './deps.js';

/** One job's run through the processor: what every step needs to know about it. */
export interface JobContext {
  job: Job<JobData>;
  /** The payload, validated (old jobs and other producers exist). */
  data: JobData;
  /** (batch, job id): how claims, stash and done records name it. */
  ref: JobRef;
  /** The batch folder (for a folder output). */
  dir: string;
  /** Where the batch's output goes: its folder, or its prefix in a bucket. */
  store: BatchStore;
  log: Logger;
  startedAt: number;
  token: string | undefined;
  signal: AbortSignal | undefined;
}

export function jobContext(
  deps: ProcessorDeps,
  job: Job<JobData>,
  token: string | undefined,
  signal: AbortSignal | undefined,
): JobContext {
  const parsed = jobDataSchema.safeParse(job.data);
  if (!parsed.success)
    throw new UnrecoverableError(`job ${job.id} has an invalid payload: ${parsed.error.issues[0]?.message}`);
  const data = parsed.data;
  return {
    job,
    data,
    ref: { batch: data.batch, id: job.id! },
    dir: deps.batchDir(data.batch),
    store: storeOf(deps, data.batch),
    log: deps.logger.child({ jobId: job.id, batch: data.batch }),
    startedAt: deps.now(),
    token,
    signal,
  };
}

/** The job as its final record sees it: the validated payload, possibly with updated counters. */
export function finalJob(ctx: JobContext, data: JobData = ctx.data): FinalJob {
  return { id: ctx.ref.id, attemptsMade: ctx.job.attemptsMade, data };
}
