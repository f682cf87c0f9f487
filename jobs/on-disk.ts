import { DelayedError } from 'bullmq';
import { StorageError } from '../src/errors.js';
import type { ManifestRecord } from '../src/output/record.js';
import { findExistingImage } from '../src/output/image-writer.js';
import { appendRecord } from '../src/output/finalize.js';
import type { JobContext } from './context.js';
import type { ProcessorDeps } from './deps.js';
import type { GenerateResult } from './generate-image.js';
import { ownerOf } from './owner.js';

/**
 * The job's finished image beside its own file name, in a folder or a bucket (one small read, no
 * Redis): its sidecar must be this job's, with its image intact.
 */
export function findOwnImage(ctx: JobContext): Promise<ManifestRecord | null> {
  return findExistingImage(ctx.store, { id: ctx.ref.id, file: ctx.data.file });
}

/**
 * The job's image where a worker recorded saving it (a copy of the job on another queue, numbered
 * otherwise). A recorded name that is no file of this batch finds nothing; a store that cannot
 * answer throws, so the job waits instead of paying again.
 */
export function findRecordedImage(ctx: JobContext, file: string): Promise<ManifestRecord | null> {
  return findExistingImage(ctx.store, { id: ctx.ref.id, file }).catch((err: unknown) => {
    if (err instanceof StorageError) throw err;
    return null;
  });
}

/**
 * Delivery is at least once; billing must be at most once. A crash between the sidecar and the
 * manifest line leaves the line missing: append it again (readers take the last per id). A crash
 * after the image and before its ledger entry is booked here: the image proves the request was paid.
 */
export async function reuseFinished(
  deps: ProcessorDeps,
  ctx: JobContext,
  record: ManifestRecord,
): Promise<GenerateResult> {
  await appendRecord(ctx.store, ctx.dir, record).catch((err: Error) =>
    ctx.log.warn({ err: err.message }, 'cannot append to the manifest; `nightshift report` rebuilds it'),
  );
  const finished = await deps.steps.finish(ctx.ref, {
    credits: ctx.data.credits,
    mode: 'reused',
    owner: ownerOf(deps, ctx),
    state: record.status as 'succeeded' | 'filtered',
    file: record.file!,
  });
  if (finished.kind === 'held') {
    // Its sender may still book it, or died with its claim alive: come back when the claim lapses,
    // so the image's credits are booked exactly once.
    const wait = Math.max(1000, finished.remainingMs);
    ctx.log.info({ waitMs: wait }, 'image on disk but its request is still claimed; waiting for the claim');
    await ctx.job.moveToDelayed(deps.now() + wait, ctx.token);
    throw new DelayedError();
  }
  ctx.log.debug({ file: record.file }, 'image already on disk; not calling the API');
  return { status: record.status, file: record.file, reused: true };
}
