import { DelayedError, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { jobDataSchema, type JobData } from '../src/queue/job-data.js';
import { ApiError, StorageError, toErrorRecord, type ErrorRecord } from '../src/errors.js';
import { recordFinal, type FinalOutcome } from '../src/output/finalize.js';
import { findExistingImage, prepareImage } from '../src/output/image-writer.js';
import { appendManifest } from '../src/output/manifest.js';
import type { ProcessorDeps } from './deps.js';

/** Small return value: never image bytes (they would be copied into Redis twice). */
export interface GenerateResult {
  status: 'succeeded' | 'filtered' | 'failed';
  file: string | null;
  reused?: boolean;
}

/** A 429 sends a job back without using an attempt; this bounds how often. */
export const MAX_RATE_LIMITED = 20;
/** A disk that refuses a paid image delays the job without using an attempt; this bounds how often. */
export const MAX_STORAGE_DELAYS = 30;

/**
 * The job processor: payload check → already on disk? → stashed bytes? → budget →
 * in-flight claim → shared rate limit → API → image, sidecar, manifest.
 * Each error class gets the action SPEC §6 gives it.
 */
export function createGenerateProcessor(deps: ProcessorDeps) {
  // Resetting the shared failure count is one Redis call per success; once a second is enough
  // unless this process has just seen a failure itself.
  let lastReset = 0;
  let sawFailure = false;
  const noteSuccess = () => {
    if (!sawFailure && deps.now() - lastReset < 1000) return;
    lastReset = deps.now();
    sawFailure = false;
    void deps.breaker.recordSuccess().catch(() => {});
  };

  return async function processGenerate(
    job: Job<JobData>,
    token?: string,
    signal?: AbortSignal,
  ): Promise<GenerateResult> {
    const parsed = jobDataSchema.safeParse(job.data);
    if (!parsed.success)
      throw new UnrecoverableError(`job ${job.id} has an invalid payload: ${parsed.error.issues[0]?.message}`);
    const data = parsed.data;
    const jobId = job.id!;
    const log = deps.logger.child({ jobId, batch: data.batch });

    if (data.api !== deps.api) {
      // Never run a job meant for another API: a mock job must not cost money, a real one must not get a placeholder.
      log.warn(
        { jobApi: data.api, workerApi: deps.api },
        'job is meant for another API; leaving it for a worker of that API',
      );
      await job.moveToDelayed(deps.now() + 60_000, token);
      throw new DelayedError();
    }

    const dir = deps.batchDir(data.batch);
    // Independent lookups, done together: every round trip here is latency added to every job.
    const [existing, stashed] = await Promise.all([
      findExistingImage(dir, { ...data, id: jobId }),
      deps.stash.get(jobId),
    ]);
    if (existing) {
      // Delivery is at least once; billing must be at most once. A crash between the sidecar and
      // the manifest line leaves the line missing: append it again (readers take the last per id).
      await appendManifest(dir, existing).catch((err: Error) =>
        log.warn({ err: err.message }, 'cannot append to the manifest; `nightshift report` rebuilds it'),
      );
      await deps.state.setState(data.batch, jobId, existing.status);
      log.debug('image already on disk; not calling the API');
      return { status: existing.status, file: existing.file, reused: true };
    }

    const startedAt = deps.now();
    if (stashed) {
      return writeResult(job, data, stashed, startedAt, data.credits, log, true);
    }

    const owner = `${deps.workerId}:${token ?? ''}`;
    const [reservation, claim] = await Promise.all([
      deps.ledger.reserve(data.batch, data.credits),
      deps.inflight.claim(jobId, owner),
    ]);
    if (claim === 'orphan') {
      // The previous attempt's worker died with this request out: the API may have billed it.
      await deps.ledger.addMaybeBilled(data.batch, data.credits);
      log.warn('the previous attempt died while its request was out; counted as possibly billed, sending again');
    }
    if (!reservation.ok) {
      if (claim !== 'held') await deps.inflight.release(jobId, owner);
      const error: ErrorRecord = {
        class: 'budget',
        status: null,
        name: 'budget_exceeded',
        message: `batch budget of ${reservation.budget} credits reached (${reservation.committed} committed); raise it with \`nightshift retry --batch ${data.batch} --max-credits N\``,
      };
      await finalFailure(job, data, error, null);
      throw new UnrecoverableError(error.message);
    }

    if (claim === 'held') {
      await deps.ledger.settle(data.batch, data.credits, 'unbilled');
      const wait = Math.max(1000, await deps.inflight.remainingMs(jobId));
      log.warn({ waitMs: wait }, 'this job is being sent by another worker; delaying it instead of paying twice');
      await job.moveToDelayed(deps.now() + wait, token);
      throw new DelayedError();
    }
    const keepAlive = setInterval(() => void deps.inflight.renew(jobId, owner).catch(() => {}), deps.inflightRenewMs);
    let settled = false;
    try {
      // Marked first, so nothing stands between the grant and the request leaving: the window counts
      // from the grant, and none is made during a 429 lockout. (A worker that dies while waiting for
      // its slot leaves the mark: the request is counted as possibly billed, erring on the safe side.)
      await deps.inflight.markSent(jobId);
      await deps.limiter.acquire(signal);
      const res = await deps.client.generate(
        {
          model: data.model,
          prompt: data.prompt,
          negative_prompt: data.negative_prompt,
          params: data.params,
          seed: data.seed,
        },
        signal,
      );
      await deps.ledger.settle(data.batch, data.credits, 'billed');
      settled = true;
      noteSuccess();
      return await writeResult(job, data, res, startedAt, data.credits, log, false);
    } catch (err) {
      if (!settled) {
        const maybe = err instanceof ApiError && err.maybeBilled;
        await deps.ledger.settle(data.batch, data.credits, maybe ? 'maybe_billed' : 'unbilled');
      }
      throw await handleError(job, data, err, startedAt, token, log);
    } finally {
      clearInterval(keepAlive);
      await deps.inflight.release(jobId, owner).catch(() => {});
    }
  };

  async function writeResult(
    job: Job<JobData>,
    data: JobData,
    res: { bytes: Buffer; mime: string; seed: number; finishReason: 'SUCCESS' | 'CONTENT_FILTERED' },
    startedAt: number,
    credits: number,
    log: Logger,
    stashedBytes: boolean,
  ): Promise<GenerateResult> {
    const dir = deps.batchDir(data.batch);
    const status = res.finishReason === 'CONTENT_FILTERED' ? 'filtered' : 'succeeded';
    const saved = prepareImage(dir, { ...data, id: job.id! }, res.bytes, { seed: res.seed, mime: res.mime });
    try {
      // The image and its sidecar go to disk together; a failure of either keeps the bytes.
      await recordFinal(
        deps,
        job,
        data,
        {
          status,
          file: saved.file,
          bytes: saved.bytes,
          sha256: saved.sha256,
          seed: res.seed,
          credits,
          error: null,
          startedAt,
        },
        { target: saved.target, parts: saved.parts },
      );
    } catch (err) {
      if (err instanceof StorageError) {
        // The image is paid for: keep the bytes and retry the write, never the request.
        await deps.stash.put(job.id!, {
          bytes: res.bytes,
          mime: res.mime,
          seed: res.seed,
          finishReason: res.finishReason,
        });
        log.error(
          { err: err.message, code: err.fsCode },
          'cannot write a paid image; bytes kept in Redis, the write will be retried',
        );
        if (err.fsCode === 'ENOSPC' || err.fsCode === 'EDQUOT') await deps.pauseQueue('storage', err.message);
      }
      throw err;
    }
    if (stashedBytes) await deps.stash.del(job.id!);
    log.info({ file: saved.file, status, seed: res.seed }, 'image saved');
    return { status, file: saved.file };
  }

  async function finalFailure(
    job: Job<JobData>,
    data: JobData,
    error: ErrorRecord,
    startedAt: number | null,
    credits = 0,
  ) {
    const outcome: FinalOutcome = {
      status: 'failed',
      file: null,
      bytes: null,
      sha256: null,
      seed: data.seed,
      credits,
      error,
      startedAt,
    };
    await recordFinal(deps, job, data, outcome);
  }

  /** Decides what BullMQ does next; returns the error to throw. */
  async function handleError(
    job: Job<JobData>,
    data: JobData,
    err: unknown,
    startedAt: number,
    token: string | undefined,
    log: Logger,
  ): Promise<Error> {
    if (err instanceof StorageError) {
      // The bytes are in the stash: wait for the disk without using an attempt, bounded so a dead
      // disk ends in a `storage` failure (and `retry` still writes the stashed bytes, never pays again).
      if (data.storage_delays + 1 > MAX_STORAGE_DELAYS) {
        await finalFailure(job, data, toErrorRecord(err), startedAt).catch(() => {});
        return new UnrecoverableError(err.message);
      }
      await job.updateData({ ...data, storage_delays: data.storage_delays + 1 });
      await job.moveToDelayed(deps.now() + Math.min(60_000, deps.storageRetryMs * 2 ** data.storage_delays), token);
      return new DelayedError();
    }
    if (!(err instanceof ApiError)) {
      if (signalAborted(err)) return err instanceof Error ? err : new Error(String(err));
      return lastAttemptOr(job, data, toErrorRecord(err), startedAt, err);
    }
    const record = toErrorRecord(err);
    switch (err.errorClass) {
      case 'rate_limited': {
        const lockMs = err.retryAfterMs ?? deps.lockoutMs;
        await deps.limiter.lockout(lockMs);
        log.warn({ lockoutMs: lockMs }, 'rate limited by the API: every worker on this key pauses');
        if (data.rate_limited + 1 > MAX_RATE_LIMITED) {
          await finalFailure(job, data, record, startedAt);
          return new UnrecoverableError(`rate limited ${MAX_RATE_LIMITED} times: ${err.message}`);
        }
        await job.updateData({ ...data, rate_limited: data.rate_limited + 1 });
        await job.moveToDelayed(deps.now() + lockMs, token);
        return new DelayedError();
      }
      case 'auth':
      case 'payment': {
        // Fail no job: put it back and stop everyone until a person fixes the key or the credits.
        await deps.pauseQueue(err.errorClass, err.message);
        await job.moveToWait(token);
        deps.onStop(err);
        return new WaitingError();
      }
      case 'invalid_request':
      case 'moderated':
        await finalFailure(job, data, record, startedAt);
        return new UnrecoverableError(err.message);
      case 'timeout': {
        const maybe = data.maybe_billed + 1;
        await job.updateData({ ...data, maybe_billed: maybe });
        if (maybe > deps.timeoutRetries) {
          await finalFailure(job, data, record, startedAt);
          return new UnrecoverableError(
            `${err.message} (possibly billed; not retried more than ${deps.timeoutRetries} time(s))`,
          );
        }
        return lastAttemptOr(job, { ...data, maybe_billed: maybe }, record, startedAt, err);
      }
      case 'transient': {
        sawFailure = true;
        const { tripped } = await deps.breaker.recordFailure();
        if (tripped)
          await deps.pauseQueue('circuit', `${deps.breakerThreshold} consecutive transient failures: ${err.message}`);
        return lastAttemptOr(job, data, record, startedAt, err);
      }
      default:
        return lastAttemptOr(job, data, record, startedAt, err);
    }
  }

  /** A retryable error: on the last attempt the job's failure is final and gets its record. */
  async function lastAttemptOr(
    job: Job<JobData>,
    data: JobData,
    record: ErrorRecord,
    startedAt: number,
    err: unknown,
  ): Promise<Error> {
    const attempts = job.opts.attempts ?? 1;
    if (job.attemptsMade + 1 >= attempts) await finalFailure(job, data, record, startedAt);
    return err instanceof Error ? err : new Error(String(err));
  }
}

function signalAborted(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: string }).code === 'ABORT_ERR');
}
