import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { PlannedJob } from './plan.js';
import type { JobData } from './job-data.js';

export const JOB_NAME = 'generate';
/** `backoff.type` our workers' backoffStrategy answers to (exponential with jitter, worker-configured). */
export const BACKOFF_TYPE = 'nightshift';

/** Transient failures get 5 attempts (SPEC §6); timeouts are bounded separately by --timeout-retries. */
export const DEFAULT_ATTEMPTS = 5;
const DAY_S = 24 * 3600;

/**
 * Completed jobs are kept (30 days) so re-enqueueing the same file adds nothing;
 * return values are tiny and stack traces short so Redis stays small.
 */
export function defaultJobOptions(attempts = DEFAULT_ATTEMPTS): JobsOptions {
  return {
    attempts,
    backoff: { type: BACKOFF_TYPE },
    removeOnComplete: { age: 30 * DAY_S },
    removeOnFail: { age: 30 * DAY_S },
    stackTraceLimit: 2,
  };
}

export function createQueue(connection: Redis, name: string, prefix: string): Queue<JobData> {
  return new Queue<JobData>(name, { connection, prefix, defaultJobOptions: defaultJobOptions() });
}

// KEYS: job hash keys -> the 1-based positions of those that exist.
const EXISTING_LUA = `
local found = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then found[#found + 1] = i end
end
return found
`;

/** Which of these job ids the queue already holds (in any state): one script call per thousand ids. */
export async function existingJobIds(redis: Redis, prefix: string, queue: string, ids: string[]): Promise<Set<string>> {
  const present = new Set<string>();
  const CHUNK = 1000;
  for (let i = 0; i < ids.length; i += CHUNK) {
    const chunk = ids.slice(i, i + CHUNK);
    const found = (await redis.eval(
      EXISTING_LUA,
      chunk.length,
      ...chunk.map((id) => `${prefix}:${queue}:${id}`),
    )) as number[];
    for (const pos of found) present.add(chunk[pos - 1]!);
  }
  return present;
}

/** Adds jobs in chunks (one pipeline each); a job id already present is left untouched by BullMQ. */
export async function addJobs(queue: Queue<JobData>, jobs: PlannedJob[], chunkSize = 500): Promise<void> {
  for (let i = 0; i < jobs.length; i += chunkSize) {
    const chunk = jobs.slice(i, i + chunkSize);
    await queue.addBulk(chunk.map((j) => ({ name: JOB_NAME, data: j.data, opts: { jobId: j.id } })));
  }
}

/** Keys of our own (not BullMQ's) state for a queue. */
export function nsKey(prefix: string, queue: string, ...parts: string[]): string {
  return [prefix, 'ns', queue, ...parts].join(':');
}
