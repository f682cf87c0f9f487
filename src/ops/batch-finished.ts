import type { BatchCounts } from '../queue/batch-state.js';
import { createJobLookup } from '../queue/queue.js';
import type { QueueContext } from './context.js';

/** The queue is looked at this often at most once the counts say done: it reads every job id of the batch. */
const QUEUE_CHECK_MS = 2000;

/**
 * For `run`: a batch is finished when no job of it is pending in its state *and* none of its jobs
 * waits, runs or is delayed on this queue (a copy of a job that finished elsewhere still runs here,
 * if only to find its image on disk).
 */
export function batchFinishedCheck(ctx: QueueContext, batch: string, now: () => number = Date.now) {
  const lookup = createJobLookup(ctx.redis, ctx.queuePrefix, ctx.queueName);
  let lastCheck = -Infinity;
  return async (counts: BatchCounts): Promise<boolean> => {
    if (counts.pending > 0 || now() - lastCheck < QUEUE_CHECK_MS) return false;
    lastCheck = now();
    const ids = [...(await ctx.state.states(batch)).keys()];
    return (await lookup.unfinished(ids)).size === 0;
  };
}
