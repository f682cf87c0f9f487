import { DelayedError, type Job } from 'bullmq';
import type { JobData } from '../src/queue/job-data.js';
import type { ProcessorDeps } from './deps.js';
import type { Claim } from '../src/billing/inflight.js';
import { jobContext, type JobContext } from './context.js';
import { findFinished, reuseFinished } from './on-disk.js';
import { claimToSend, ownerOf, send } from './send.js';
import { writePaid } from './write.js';
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
      // Independent lookups, done together: every round trip here is latency added to every job.
      const [finished, stashed] = await Promise.all([findFinished(deps, ctx), deps.stash.get(ctx.ref)]);
      if (finished) return await reuseFinished(deps, ctx, finished);
      if (stashed) return await writePaid(deps, ctx, { image: stashed, fromStash: true });
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
  const claim = await claimToSend(deps, ctx, owner);
  const keepAlive = setInterval(
    () => void deps.inflight.renew(ctx.ref, owner).catch(() => {}),
    deps.settings.inflightRenewMs,
  );
  try {
    const late = await doneSinceLooked(deps, ctx, claim);
    if (late) return late;
    const image = await send(deps, ctx);
    feed.success();
    return await writePaid(deps, ctx, { image, fromStash: false });
  } finally {
    clearInterval(keepAlive);
    await deps.inflight.release(ctx.ref, owner).catch(() => {});
  }
}

/**
 * A copy of the job on another queue may have finished (or been paid for) between this one's look
 * at the disk and its claim: the claim says so, and then nothing is sent.
 */
async function doneSinceLooked(deps: ProcessorDeps, ctx: JobContext, claim: Claim): Promise<GenerateResult | null> {
  if (!claim.finished && !claim.stashed) return null;
  const [finished, stashed] = await Promise.all([
    claim.finished ? findFinished(deps, ctx) : null,
    claim.stashed ? deps.stash.get(ctx.ref) : null,
  ]);
  if (!finished && !stashed) return null;
  await deps.ledger.settle(ctx.data.batch, ctx.data.credits, 'unbilled');
  if (finished) return reuseFinished(deps, ctx, finished);
  return writePaid(deps, ctx, { image: stashed!, fromStash: true });
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
