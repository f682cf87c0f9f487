import type { BatchCounts } from '../queue/batch-state.js';
import { createJobLookup } from '../queue/queue.js';
import type { QueueContext } from './context.js';

/**
 * Once the counts say done, the queue is looked at again after FIRST_RECHECK_MS, then twice as long
 * each time up to MAX_RECHECK_MS: the last jobs are marked done a moment before BullMQ moves them
 * to completed, and waiting a fixed 2 s for that made every run end 2 s late; each look reads every
 * job id of the batch, so a batch that stays unfinished is not read more often than that.
 */
const FIRST_RECHECK_MS = 50;
const MAX_RECHECK_MS = 2000;

/**
 * For `run`: a batch is finished when no job of it is pending in its state *and* none of its jobs
 * waits, runs or is delayed on this queue (a copy of a job that finished elsewhere still runs here,
 * if only to find its image on disk).
 */
export function batchFinishedCheck(ctx: QueueContext, batch: string, now: () => number = Date.now) {
  const lookup = createJobLookup(ctx.redis, ctx.queuePrefix, ctx.queueName);
  let nextCheck = -Infinity;
  let gap = FIRST_RECHECK_MS;
  return async (counts: BatchCounts): Promise<boolean> => {
    if (counts.pending > 0) gap = FIRST_RECHECK_MS;
    if (counts.pending > 0 || now() < nextCheck) return false;
    const ids = [...(await ctx.state.states(batch)).keys()];
    if ((await lookup.unfinished(ids)).size === 0) return true;
    nextCheck = now() + gap;
    gap = Math.min(MAX_RECHECK_MS, gap * 2);
    return false;
  };
}
