import { DelayedError, UnrecoverableError } from 'bullmq';
import { ApiError, type ErrorRecord } from '../src/errors.js';
import { MODELS } from '../src/models.js';
import type { StashedImage } from '../src/billing/stash.js';
import type { Claim } from '../src/billing/inflight.js';
import type { JobContext } from './context.js';
import type { ProcessorDeps } from './deps.js';
import { finalFailure } from './final.js';

/** The claim's owner: this worker and this job's lock, so a renewal or release never touches another's. */
export function ownerOf(deps: ProcessorDeps, ctx: JobContext): string {
  return `${deps.settings.workerId}:${ctx.token ?? ''}`;
}

/**
 * Reserves the job's credits and claims its request. Throws what BullMQ must do instead of sending:
 * fail it (the budget is reached) or delay it (another worker is sending it right now).
 */
export async function claimToSend(deps: ProcessorDeps, ctx: JobContext, owner: string): Promise<Claim> {
  const { data, ref } = ctx;
  const [reservation, claim] = await Promise.all([
    deps.ledger.reserve(data.batch, data.credits),
    deps.inflight.claim(ref, owner),
  ]);
  if (claim.outcome === 'orphan') {
    // The previous attempt's worker died with this request out: the API may have billed it.
    await deps.ledger.addMaybeBilled(data.batch, data.credits);
    ctx.log.warn('the previous attempt died while its request was out; counted as possibly billed, sending again');
  }
  if (!reservation.ok) {
    if (claim.outcome !== 'held') await deps.inflight.release(ref, owner);
    const error: ErrorRecord = {
      class: 'budget',
      status: null,
      name: 'budget_exceeded',
      message: `batch budget of ${reservation.budget} credits reached (${reservation.committed} committed); raise it with \`nightshift retry --batch ${data.batch} --max-credits N\``,
    };
    await finalFailure(deps, ctx, { error, startedAt: null });
    throw new UnrecoverableError(error.message);
  }
  if (claim.outcome === 'held') {
    await deps.ledger.settle(data.batch, data.credits, 'unbilled');
    const wait = Math.max(1000, await deps.inflight.remainingMs(ref));
    ctx.log.warn({ waitMs: wait }, 'this job is being sent by another worker; delaying it instead of paying twice');
    await ctx.job.moveToDelayed(deps.now() + wait, ctx.token);
    throw new DelayedError();
  }
  return claim;
}

/**
 * Sends the job's one request under the shared rate limit and books its credits. After a 200 the
 * image is paid for: what comes back is only the bytes and what we can trust of the headers.
 */
export async function send(deps: ProcessorDeps, ctx: JobContext): Promise<StashedImage> {
  const { data, ref } = ctx;
  let answered = false;
  try {
    // Marked first, so nothing stands between the grant and the request leaving: the window counts
    // from the grant, and none is made during a 429 lockout. (A worker that dies while waiting for
    // its slot leaves the mark: the request is counted as possibly billed, erring on the safe side.)
    await deps.inflight.markSent(ref);
    await deps.limiter.acquire(ctx.signal);
    const res = await deps.client.generate(
      {
        model: data.model,
        prompt: data.prompt,
        negative_prompt: data.negative_prompt,
        params: data.params,
        seed: data.seed,
      },
      ctx.signal,
    );
    answered = true;
    for (const w of res.warnings) ctx.log.warn({ requestId: res.requestId }, w);
    await deps.ledger.settle(data.batch, data.credits, 'billed');
    return { bytes: res.bytes, mime: res.mime, seed: checkedSeed(ctx, res.seed), finishReason: res.finishReason };
  } catch (err) {
    if (!answered) {
      const maybe = err instanceof ApiError && err.maybeBilled;
      await deps.ledger.settle(data.batch, data.credits, maybe ? 'maybe_billed' : 'unbilled');
    }
    throw err;
  }
}

/** A seed the API returned that is no valid seed is recorded as the one we asked for. */
function checkedSeed(ctx: JobContext, seed: number): number {
  // A seed the model does not take cannot be the image's seed.
  if (Number.isInteger(seed) && seed >= 0 && seed <= MODELS[ctx.data.model].seedMax) return seed;
  ctx.log.warn(
    { returnedSeed: String(seed), seed: ctx.data.seed },
    'the API returned an invalid seed; recording the requested one',
  );
  return ctx.data.seed;
}
