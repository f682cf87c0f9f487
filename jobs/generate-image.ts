import { DelayedError, type Job } from 'bullmq';
import type { JobData } from '../src/queue/job-data.js';
import type { ProcessorDeps } from './deps.js';
import { jobContext, type JobContext } from './context.js';
import { findOwnImage, reuseFinished } from './on-disk.js';
import { ownerOf } from './owner.js';
import { claimToSend, send, unansweredOutcome } from './send.js';
import { writePaid } from './write.js';
import type { SentOutcome } from '../src/billing/job-steps.js';
import { handleError, type BreakerFeed } from './errors.js';

/** Small return value: never image bytes (they would be copied into Redis twice). */
export interface GenerateResult {
  status: 'succeeded' | 'filtered' | 'failed';
  file: string | null;
  reused?: boolean;
}

/**
 * The job processor, in steps: payload check → meant for this API? → already on disk? → stashed
 * bytes? → budget and in-flight claim → shared rate limit → API → image, sidecar, manifest.
 * Whatever fails, the error decides what BullMQ does next; after a 200 only the write is retried.
 */
export function createGenerateProcessor(deps: ProcessorDeps) {
  const feed = breakerFeed(deps);
  return async function processGenerate(
    job: Job<JobData>,
    token?: string,
    signal?: AbortSignal,
  ): Promise<GenerateResult> {
    const ctx = jobContext(deps, job, token, signal);
    try {
      if (ctx.data.api !== deps.settings.api) return await leaveForItsApi(deps, ctx);
      // The disk first (no Redis); the done record and the stash are looked at by the claim's script.
      const own = await findOwnImage(ctx);
      if (own) return await reuseFinished(deps, ctx, own);
      return await payAndWrite(deps, ctx, feed);
    } catch (err) {
      throw await handleError({ deps, ctx, feed }, err);
    }
  };
}

/** Never run a job meant for another API: a mock job must not cost money, a real one must not get a placeholder. */
async function leaveForItsApi(deps: ProcessorDeps, ctx: JobContext): Promise<never> {
  ctx.log.warn(
    { jobApi: ctx.data.api, workerApi: deps.settings.api },
    'job is meant for another API; leaving it for a worker of that API',
  );
  await ctx.job.moveToDelayed(deps.now() + 60_000, ctx.token);
  throw new DelayedError();
}

/** The one paid step: claim the request, send it, write what it bought; the claim is held until the image is on disk. */
async function payAndWrite(
  deps: ProcessorDeps,
  ctx: JobContext,
  feed: BreakerFeed & { success(): void },
): Promise<GenerateResult> {
  const owner = ownerOf(deps, ctx);
  const cleared = await claimToSend(deps, ctx, owner);
  if ('result' in cleared) return cleared.result;
  const keepAlive = setInterval(
    () => void deps.inflight.renew(ctx.ref, owner).catch(() => {}),
    deps.settings.inflightRenewMs,
  );
  let outcome: SentOutcome = 'unbilled';
  let finished = false;
  try {
    const image = await send(deps, ctx, cleared);
    outcome = 'billed';
    feed.success();
    return await writePaid(deps, ctx, {
      image,
      fromStash: false,
      answered: { owner, onFinished: () => (finished = true) },
    });
  } catch (err) {
    if (outcome !== 'billed') outcome = unansweredOutcome(err);
    throw err;
  } finally {
    clearInterval(keepAlive);
    // The record did not complete (the request failed, or its image waits in the stash): book what
    // the request cost and release the claim, in one step, so the next attempt may send (or write) it.
    if (!finished) await deps.steps.closeSent(ctx.ref, { owner, credits: ctx.data.credits, outcome }).catch(() => {});
  }
}

/**
 * Tells the breaker of this worker's (API, key) about answers and transient failures. Resetting the
 * shared failure count is one Redis call per success; once a second is enough unless this process
 * has just seen a failure itself.
 */
function breakerFeed(deps: ProcessorDeps): BreakerFeed & { success(): void } {
  let lastReset = 0;
  let sawFailure = false;
  return {
    success() {
      if (!sawFailure && deps.now() - lastReset < 1000) return;
      lastReset = deps.now();
      sawFailure = false;
      void deps.breaker.recordSuccess().catch(() => {});
    },
    failure() {
      sawFailure = true;
      return deps.breaker.recordFailure();
    },
  };
}
