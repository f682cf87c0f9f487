import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { PlannedJob } from './plan.js';
import type { JobData } from './job-data.js';
import { loadScript, type LuaScript } from '../redis/scripts.js';
import { bullKeys } from '../redis/keys.js';

export const JOB_NAME = 'generate';
/** `backoff.type` our workers' backoffStrategy answers to (exponential with jitter, worker-configured). */
export const BACKOFF_TYPE = 'nightshift';

/** Transient failures get 5 attempts; timeouts are bounded separately by --timeout-retries. */
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

/**
 * KEYS: job hash keys. ARGV: 'present' or 'unfinished'.
 * Result: the 1-based positions of the jobs that exist (in any state), or that exist and have not
 * finished (waiting, delayed, active: BullMQ sets `finishedOn` when a job completes or fails, and
 * clears it when a failed job is retried).
 */
const FIND_JOBS: LuaScript = {
  name: 'nsQueueFindJobs',
  numberOfKeys: null,
  lua: `
local found = {}
local unfinished = ARGV[1] == 'unfinished'
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 and not (unfinished and redis.call('HEXISTS', key, 'finishedOn') == 1) then
    found[#found + 1] = i
  end
end
return found
`,
};

/** Looks job ids up in one queue, a thousand per script call. */
export function createJobLookup(redis: Redis, prefix: string, queue: string) {
  const findScript = loadScript(redis, FIND_JOBS);
  const find = async (ids: string[], mode: 'present' | 'unfinished'): Promise<Set<string>> => {
    const out = new Set<string>();
    const CHUNK = 1000;
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      const keys = chunk.map((id) => bullKeys.job(prefix, queue, id));
      const found = (await findScript(keys.length, ...keys, mode)) as number[];
      for (const pos of found) out.add(chunk[pos - 1]!);
    }
    return out;
  };
  return {
    /** Which of these job ids the queue already holds, in any state. */
    present: (ids: string[]) => find(ids, 'present'),
    /** Which of them are still waiting, delayed or active on the queue. */
    unfinished: (ids: string[]) => find(ids, 'unfinished'),
  };
}

/** Adds jobs in chunks (one pipeline each); a job id already present is left untouched by BullMQ. */
export async function addJobs(queue: Queue<JobData>, jobs: PlannedJob[], chunkSize = 500): Promise<void> {
  for (let i = 0; i < jobs.length; i += chunkSize) {
    const chunk = jobs.slice(i, i + chunkSize);
    await queue.addBulk(chunk.map((j) => ({ name: JOB_NAME, data: j.data, opts: { jobId: j.id } })));
  }
}
