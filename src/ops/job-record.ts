import type { ManifestRecord } from '../output/record.js';
import { sidecarPathFor } from '../output/paths.js';
import { readStoredSidecar } from '../output/sidecar.js';
import { batchStore } from '../output/storage/open.js';
import type { OutputRoot } from '../output/storage/types.js';

/**
 * A job's record from its sidecar, in a folder or a bucket, for commands that only look (status,
 * retry by class): null without one, or when the store cannot answer or the payload names no valid
 * batch or file. Nothing here decides whether to pay.
 */
export async function jobRecordOrNull(
  output: OutputRoot,
  job: { api: string; batch: string; file: string },
): Promise<ManifestRecord | null> {
  try {
    const read = await readStoredSidecar(batchStore(output, job), sidecarPathFor(job.file));
    return read.kind === 'record' ? read.record : null;
  } catch {
    return null;
  }
}
