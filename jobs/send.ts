import { DelayedError, UnrecoverableError } from 'bullmq';
import { ApiError, type ErrorRecord } from '../src/errors.js';
import type { StashedImage } from '../src/billing/stash.js';
import type { Begun } from '../src/billing/job-steps.js';
import type { Slot } from '../src/billing/rate-limiter.js';
import type { JobContext } from './context.js';
import type { ProcessorDeps } from './deps.js';
import { finalFailure } from './final.js';
import type { GenerateResult } from './generate-image.js';
import { findRecordedImage, reuseFinished } from './on-disk.js';
import { writePaid } from './write.js';

/** Looks at the done record and the stash again at most this often before giving the attempt up. */
const MAX_ROUNDS = 3;

/** Cleared to send: the rate slot booked for the request. */
export interface Cleared {
  slot: Slot;
}

/**
 * In one round trip: claims the job's request, reserves its credits, marks it sent and books its rate
 * slot. Another copy of the job may have finished (or been paid for) meanwhile: then nothing is sent
 * and its result is returned. Throws what BullMQ must do instead of sending: fail it (the budget is
 * reached) or delay it (another worker is sending it right now).
 */
export async function claimToSend(
  deps: ProcessorDeps,
  ctx: JobContext,
  owner: string,
): Promise<Cleared | { result: GenerateResult }> {
  let passDone = false;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const b = await deps.steps.begin(ctx.ref, { owner, credits: ctx.data.credits, ownFile: ctx.data.file, passDone });
    if (b.kind === 'go') {
      if (b.orphan) orphaned(ctx);
      return { slot: b.slot };
    }
    if (b.kind === 'done') {
      const found = await findRecordedImage(ctx, b.file);
      if (found) return { result: await reuseFinished(deps, ctx, found) };
      // The record names a file the disk no longer has: the disk decides, the image is made again.
      passDone = true;
    } else if (b.kind === 'stashed') {
      const image = await deps.stash.get(ctx.ref);
      if (image) return { result: await writePaid(deps, ctx, { image, fromStash: true }) };
    } else {
      throw await refused(deps, ctx, b);
    }
  }
  throw new Error('the job changed under this attempt several times (another copy is finishing it); trying again');
}

function orphaned(ctx: JobContext): void {
  // The previous attempt's worker died with this request out: the API may have billed it.
  ctx.log.warn('the previous attempt died while its request was out; counted as possibly billed, sending again');
}

/** Over the budget (the job fails unsent) or held by another worker (it waits for the hold to lapse). */
async function refused(
  deps: ProcessorDeps,
  ctx: JobContext,
  b: Extract<Begun, { kind: 'budget' | 'held' }>,
): Promise<Error> {
  const { data } = ctx;
  if (b.kind === 'held') {
    const wait = Math.max(1000, b.remainingMs);
    ctx.log.warn({ waitMs: wait }, 'this job is being sent by another worker; delaying it instead of paying twice');
    await ctx.job.moveToDelayed(deps.now() + wait, ctx.token);
    return new DelayedError();
  }
  if (b.orphan) orphaned(ctx);
  const error: ErrorRecord = {
    class: 'budget',
    status: null,
    name: 'budget_exceeded',
    message: `batch budget of ${b.budget} credits reached (${b.committed} committed); raise it with \`nightshift retry --batch ${data.batch} --max-credits N\``,
  };
  await finalFailure(deps, ctx, { error, startedAt: null });
  return new UnrecoverableError(error.message);
}

/**
 * Sends the job's one request in its rate slot. After a 200 the image is paid for: what comes back
 * is only the bytes and what we can trust of the headers; its credits are booked with its record.
 */
export async function send(deps: ProcessorDeps, ctx: JobContext, cleared: Cleared): Promise<StashedImage> {
  const { data } = ctx;
  // The sent mark was set with the claim, so nothing stands between the slot and the request leaving.
  // (A worker that dies while waiting for its slot leaves the mark: the request is counted as
  // possibly billed, erring on the safe side.) A request that fails is booked by the caller, with
  // its claim: see unansweredOutcome.
  await deps.limiter.waitFor(cleared.slot, ctx.signal);
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
  for (const w of res.warnings) ctx.log.warn({ requestId: res.requestId }, w);
  return { bytes: res.bytes, mime: res.mime, seed: res.seed, finishReason: res.finishReason };
}

/** What a request that failed before its answer cost: possibly billed when the API may have run it. */
export function unansweredOutcome(err: unknown): 'maybe_billed' | 'unbilled' {
  return err instanceof ApiError && err.maybeBilled ? 'maybe_billed' : 'unbilled';
}
