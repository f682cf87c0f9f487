import type { ManifestRecord } from '../src/output/record.js';
import { findExistingImage } from '../src/output/image-writer.js';
import { appendRecord } from '../src/output/finalize.js';
import type { JobContext } from './context.js';
import type { ProcessorDeps } from './deps.js';
import type { GenerateResult } from './generate-image.js';

/**
 * The job's finished image, found by its job id (in a folder or a bucket): first beside its own file name (one small read),
 * then where a worker recorded saving it (a copy of the job on another queue, numbered otherwise).
 * Either way the sidecar on disk must be this job's, with its image intact.
 */
export async function findFinished(deps: ProcessorDeps, ctx: JobContext): Promise<ManifestRecord | null> {
  const [own, done] = await Promise.all([
    findExistingImage(ctx.store, { id: ctx.ref.id, file: ctx.data.file }),
    deps.state.doneFile(ctx.ref.batch, ctx.ref.id),
  ]);
  if (own) return own;
  if (done === null || done === ctx.data.file) return null;
  return findExistingImage(ctx.store, { id: ctx.ref.id, file: done }).catch(() => null);
}

/**
 * Delivery is at least once; billing must be at most once. A crash between the sidecar and the
 * manifest line leaves the line missing: append it again (readers take the last per id).
 */
export async function reuseFinished(
  deps: ProcessorDeps,
  ctx: JobContext,
  record: ManifestRecord,
): Promise<GenerateResult> {
  await appendRecord(ctx.store, ctx.dir, record).catch((err: Error) =>
    ctx.log.warn({ err: err.message }, 'cannot append to the manifest; `nightshift report` rebuilds it'),
  );
  await deps.state.setState(ctx.ref.batch, ctx.ref.id, record.status as 'succeeded' | 'filtered', record.file!);
  ctx.log.debug({ file: record.file }, 'image already on disk; not calling the API');
  return { status: record.status, file: record.file, reused: true };
}
