import { DelayedError, UnrecoverableError, WaitingError } from 'bullmq';
import { ApiError, toErrorRecord, type ErrorRecord } from '../src/errors.js';
import { MODELS } from '../src/models.js';
import { MAX_RETRY_AFTER_MS } from '../src/stability/classify.js';
import type { JobContext } from './context.js';
import type { ProcessorDeps, StopReason } from './deps.js';
import { finalFailure } from './final.js';
import { UnsavedImageError } from './write.js';

/** A 429 sends a job back without using an attempt; this bounds how often. */
export const MAX_RATE_LIMITED = 20;
/** A paid image that cannot be written delays the job without using an attempt; this bounds how often. */
export const MAX_STORAGE_DELAYS = 30;

/** What the processor learns from an error, for the breaker: a transient failure, or an answer. */
export interface BreakerFeed {
  failure(): Promise<{ tripped: boolean }>;
}

export interface ErrorContext {
  deps: ProcessorDeps;
  ctx: JobContext;
  feed: BreakerFeed;
}

/** Decides what BullMQ does next with a job whose attempt threw `err`; returns the error to throw. */
export async function handleError(e: ErrorContext, err: unknown): Promise<Error> {
  // Already a decision (delay, wait, fail for good) taken by a step.
  if (err instanceof DelayedError || err instanceof WaitingError || err instanceof UnrecoverableError) return err;
  if (err instanceof UnsavedImageError) return unsaved(e, err);
  if (!(err instanceof ApiError)) {
    if (signalAborted(err)) return err instanceof Error ? err : new Error(String(err));
    return lastAttemptOr(e, toErrorRecord(err), err);
  }
  if (err.status === 404 && MODELS[e.ctx.data.model].family === 'v1') return stop(e, 'engine', err);
  switch (err.errorClass) {
    case 'rate_limited':
      return rateLimited(e, err);
    case 'auth':
    case 'payment':
      return stop(e, err.errorClass, err);
    case 'invalid_request':
    case 'moderated':
      await finalFailure(e.deps, e.ctx, { error: toErrorRecord(err), startedAt: e.ctx.startedAt });
      return new UnrecoverableError(err.message);
    case 'timeout':
      return timedOut(e, err);
    case 'transient': {
      const { tripped } = await e.feed.failure();
      if (tripped) {
        const why = `${e.deps.settings.breakerThreshold} consecutive transient failures: ${err.message}`;
        await e.deps.pauseQueue('circuit', why);
      }
      return lastAttemptOr(e, toErrorRecord(err), err);
    }
    default:
      return lastAttemptOr(e, toErrorRecord(err), err);
  }
}

/**
 * The bytes are in the stash: wait (for the disk) without using an attempt, bounded so a dead disk or
 * a record that can never be built ends in a failure (and `retry` still writes the stashed bytes).
 */
async function unsaved(e: ErrorContext, err: UnsavedImageError): Promise<Error> {
  const { deps, ctx } = e;
  const delays = ctx.data.storage_delays;
  if (delays + 1 > MAX_STORAGE_DELAYS) {
    await finalFailure(deps, ctx, { error: toErrorRecord(err.reason), startedAt: ctx.startedAt }).catch(() => {});
    return new UnrecoverableError(err.message);
  }
  await ctx.job.updateData({ ...ctx.data, storage_delays: delays + 1 });
  await ctx.job.moveToDelayed(deps.now() + Math.min(60_000, deps.settings.storageRetryMs * 2 ** delays), ctx.token);
  return new DelayedError();
}

/** Every worker on the key pauses for the lockout; the job goes back without using an attempt. */
async function rateLimited(e: ErrorContext, err: ApiError): Promise<Error> {
  const { deps, ctx } = e;
  const asked = err.retryAfterMs;
  let lockMs = asked ?? deps.settings.lockoutMs;
  // The client caps what it reads too; this holds whatever it hands over.
  if (err.retryAfterCapped || (asked !== undefined && asked > MAX_RETRY_AFTER_MS)) {
    ctx.log.warn(
      { retryAfterMs: asked, lockoutMs: MAX_RETRY_AFTER_MS },
      'the API asked for a longer wait than 10 minutes; waiting 10 minutes',
    );
    lockMs = MAX_RETRY_AFTER_MS;
  }
  await deps.limiter.lockout(lockMs);
  ctx.log.warn({ lockoutMs: lockMs }, 'rate limited by the API: every worker on this key pauses');
  if (ctx.data.rate_limited + 1 > MAX_RATE_LIMITED) {
    await finalFailure(deps, ctx, { error: toErrorRecord(err), startedAt: ctx.startedAt });
    return new UnrecoverableError(`rate limited ${MAX_RATE_LIMITED} times: ${err.message}`);
  }
  await ctx.job.updateData({ ...ctx.data, rate_limited: ctx.data.rate_limited + 1 });
  await ctx.job.moveToDelayed(deps.now() + lockMs, ctx.token);
  return new DelayedError();
}

/** Fail no job: put it back and stop everyone until a person fixes the key, the credits or the engine. */
async function stop(e: ErrorContext, reason: StopReason, err: ApiError): Promise<Error> {
  const { deps, ctx } = e;
  const message =
    reason === 'engine'
      ? `the API no longer serves the v1 engine ${ctx.data.model} (404): ${err.message}; ` +
        'enqueue the batch again with a v2beta model (e.g. --model core) or cancel it'
      : err.message;
  await deps.pauseQueue(reason, message);
  await ctx.job.moveToWait(ctx.token);
  deps.onStop(reason, message);
  return new WaitingError();
}

/** Possibly billed: retried at most --timeout-retries times. */
async function timedOut(e: ErrorContext, err: ApiError): Promise<Error> {
  const { deps, ctx } = e;
  const maybe = ctx.data.maybe_billed + 1;
  const data = { ...ctx.data, maybe_billed: maybe };
  await ctx.job.updateData(data);
  const record = toErrorRecord(err);
  if (maybe > deps.settings.timeoutRetries) {
    await finalFailure(deps, ctx, { error: record, startedAt: ctx.startedAt, data });
    return new UnrecoverableError(
      `${err.message} (possibly billed; not retried more than ${deps.settings.timeoutRetries} time(s))`,
    );
  }
  return lastAttemptOr({ ...e, ctx: { ...ctx, data } }, record, err);
}

/** A retryable error: on the last attempt the job's failure is final and gets its record. */
async function lastAttemptOr(e: ErrorContext, record: ErrorRecord, err: unknown): Promise<Error> {
  const attempts = e.ctx.job.opts.attempts ?? 1;
  if (e.ctx.job.attemptsMade + 1 >= attempts) {
    await finalFailure(e.deps, e.ctx, { error: record, startedAt: e.ctx.startedAt });
  }
  return err instanceof Error ? err : new Error(String(err));
}

function signalAborted(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR');
}
