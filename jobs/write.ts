import { StorageError } from '../src/errors.js';
import type { StashedImage } from '../src/billing/stash.js';
import { recordFinal, type RecordFinish } from '../src/output/finalize.js';
import { prepareImage } from '../src/output/image-writer.js';
import { finalJob, type JobContext } from './context.js';
import type { ProcessorDeps } from './deps.js';
import type { GenerateResult } from './generate-image.js';

/**
 * A paid image that did not reach the disk, whatever stopped it (the disk, building its record, a
 * bug): its bytes are in the stash, and the write is retried, never the request.
 */
export class UnsavedImageError extends Error {
  override name = 'UnsavedImageError';
  constructor(readonly reason: unknown) {
    super(reason instanceof Error ? reason.message : String(reason), { cause: reason });
  }
}

/**
 * Writes a paid image, its sidecar and its manifest line. On any failure the bytes are kept (unless
 * they came from the stash, where they still are) and an UnsavedImageError is thrown.
 */
export async function writePaid(
  deps: ProcessorDeps,
  ctx: JobContext,
  paid: { image: StashedImage; fromStash: boolean; answered?: Answered },
): Promise<GenerateResult> {
  const { image } = paid;
  const status = image.finishReason === 'CONTENT_FILTERED' ? 'filtered' : 'succeeded';
  try {
    const saved = prepareImage(ctx.dir, { ...ctx.data, id: ctx.ref.id }, image.bytes, image);
    // The image and its sidecar go to disk together; a failure of either keeps the bytes.
    await recordFinal(
      deps,
      finalJob(ctx),
      {
        status,
        file: saved.file,
        bytes: saved.bytes,
        sha256: saved.sha256,
        seed: image.seed,
        credits: ctx.data.credits,
        error: null,
        startedAt: ctx.startedAt,
      },
      { parts: saved.parts, ...(paid.answered ? { finish: finishPaid(deps, ctx, paid.answered) } : {}) },
    );
  } catch (err) {
    throw await keepUnsaved(deps, ctx, { ...paid, err });
  }
  if (paid.fromStash) await deps.stash.del(ctx.ref).catch(() => {});
  ctx.log.info({ file: ctx.data.file, status, seed: image.seed }, 'image saved');
  queueThumbnail(deps, ctx);
  return { status, file: ctx.data.file };
}

/** A request this attempt sent and the API answered: its claim and credits close with the record. */
export interface Answered {
  owner: string;
  /** Called once the record is complete: the ledger, the claim and the batch state are settled. */
  onFinished(): void;
}

/**
 * The last step of the record (the batch state) also books the credits billed and releases the
 * claim and its sent mark, in the same round trip: the record and the ledger agree.
 */
function finishPaid(deps: ProcessorDeps, ctx: JobContext, answered: Answered): RecordFinish {
  return async (state, file) => {
    await deps.steps.finish(ctx.ref, {
      credits: ctx.data.credits,
      mode: 'paid',
      owner: answered.owner,
      state,
      ...(file !== undefined ? { file } : {}),
    });
    answered.onFinished();
  };
}

/** The job is paid and recorded: nothing the thumbnail does may fail or repeat it. */
function queueThumbnail(deps: ProcessorDeps, ctx: JobContext): void {
  // A bucket has no local file to read: its thumbnails are made by the report.
  if (ctx.store.kind !== 'folder') return;
  try {
    deps.thumbnails?.add(ctx.dir, ctx.data.file);
  } catch (err) {
    ctx.log.warn(
      { err: err instanceof Error ? err.message : String(err) },
      'no thumbnail yet; the report will make it',
    );
  }
}

async function keepUnsaved(
  deps: ProcessorDeps,
  ctx: JobContext,
  o: { image: StashedImage; fromStash: boolean; err: unknown },
): Promise<UnsavedImageError> {
  const code = o.err instanceof StorageError ? o.err.fsCode : undefined;
  if (!o.fromStash) {
    try {
      await deps.stash.put(ctx.ref, o.image);
    } catch (stashErr) {
      // Redis is away too: the bytes live only in this attempt; the next one may pay again.
      ctx.log.error(
        { err: (o.err as Error)?.message, stashErr: (stashErr as Error).message },
        'cannot write a paid image and cannot keep its bytes either',
      );
      return new UnsavedImageError(o.err);
    }
  }
  ctx.log.error(
    { err: o.err instanceof Error ? o.err.message : String(o.err), code },
    'cannot write a paid image; bytes kept in Redis, the write will be retried',
  );
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    await deps.pauseQueue('storage', (o.err as Error).message).catch(() => {});
  }
  return new UnsavedImageError(o.err);
}
