import type { JobData } from '../queue/job-data.js';
import type { ManifestRecord } from './record.js';
import type { ErrorRecord } from '../errors.js';
import { appendManifest } from './manifest.js';
import { findExistingImage } from './image-writer.js';
import { normalizeRecord, sidecarText } from './sidecar.js';
import { sidecarPathFor } from './paths.js';
import { folderStore } from './storage/folder-store.js';
import type { BatchStore } from './storage/types.js';
import type { BatchState, JobState } from '../queue/batch-state.js';

export interface FinalOutcome {
  status: ManifestRecord['status'];
  file: string | null;
  bytes: number | null;
  sha256: string | null;
  seed: number;
  credits: number;
  error: ErrorRecord | null;
  startedAt: number | null;
  /** Attempts to record; default: the job's attempts so far plus the one that just ended. */
  attempts?: number;
}

/** The job a final record is about: its id, attempts so far and (validated) payload. */
export interface FinalJob {
  id: string;
  attemptsMade: number;
  data: JobData;
}

/** Builds the manifest line of a job that reached a final state. */
export function buildRecord(job: FinalJob, o: FinalOutcome, now: number): ManifestRecord {
  const { data } = job;
  return {
    id: job.id,
    batch: data.batch,
    source: data.source,
    line: data.line,
    index: data.index,
    sample: data.sample,
    prompt: data.prompt,
    negative_prompt: data.negative_prompt,
    model: data.model,
    params: data.params,
    seed: o.seed,
    status: o.status,
    file: o.file,
    bytes: o.bytes,
    sha256: o.sha256,
    credits: o.credits,
    attempts: o.attempts ?? job.attemptsMade + 1,
    started_at: o.startedAt === null ? null : new Date(o.startedAt).toISOString(),
    finished_at: new Date(now).toISOString(),
    duration_ms: o.startedAt === null ? null : Math.max(0, now - o.startedAt),
    error: o.error as ManifestRecord['error'],
  };
}

export interface FinalizeDeps {
  state: Pick<BatchState, 'setState'>;
  batchDir: (batch: string) => string;
  /** Where a batch's output goes; default: its folder on disk. */
  storeFor?: (batch: string) => BatchStore;
  now: () => number;
}

/** The batch's store: the one given, else its folder. */
export function storeOf(deps: Pick<FinalizeDeps, 'batchDir' | 'storeFor'>, batch: string): BatchStore {
  return deps.storeFor ? deps.storeFor(batch) : folderStore(deps.batchDir(batch));
}

/**
 * Appends the record's manifest line where lines can be appended (a folder). Objects cannot be
 * appended to: there the sidecar is the job's record, and `report` builds the manifest from them.
 */
export async function appendRecord(store: BatchStore, dir: string, record: ManifestRecord): Promise<void> {
  if (store.kind === 'folder') await appendManifest(dir, record);
}

/**
 * The record's last step, when it must do more than record the batch state: a paid answer books
 * its credits and releases its claim in the same step.
 */
export type RecordFinish = (state: JobState, file: string | undefined) => Promise<void>;

/**
 * Sidecar first (the truth `report` rebuilds from), then the manifest line, then the batch
 * counters (with the image saved, for a copy of the job on another queue), so a crash between
 * steps is repaired by `report`, never lost. A record without an image never replaces a saved one:
 * the saved record is returned instead.
 */
export async function recordFinal(
  deps: FinalizeDeps,
  job: FinalJob,
  outcome: FinalOutcome,
  image?: { parts: Buffer[]; finish?: RecordFinish },
): Promise<ManifestRecord> {
  // Validated and ordered once, for both the sidecar and the manifest line.
  const record = normalizeRecord(buildRecord(job, outcome, deps.now()));
  const { data } = job;
  const dir = deps.batchDir(data.batch);
  const store = storeOf(deps, data.batch);
  const state = outcome.error?.class === 'cancelled' ? 'cancelled' : outcome.status;
  if (!image) {
    let kept: ManifestRecord | null;
    try {
      kept = await keepFinished(deps, store, job);
    } catch (err) {
      // The store cannot tell whether an image is saved: nothing is written over what may be one,
      // but the batch state says the job ended, so a run does not wait for it for ever.
      await deps.state.setState(data.batch, job.id, state).catch(() => {});
      throw err;
    }
    if (kept) return kept;
  }
  const sidecar = { key: sidecarPathFor(data.file), data: sidecarText(record) };
  // Image and sidecar are written together, image first: a sidecar never stands without its image
  // (in a folder: fsynced at once, then renamed in order, one round of fsyncs instead of two).
  await store.put(image ? [{ key: data.file, data: image.parts }, sidecar] : [sidecar]);
  await appendRecord(store, dir, record);
  const file = image && outcome.file !== null ? outcome.file : undefined;
  await (image?.finish ? image.finish(state, file) : deps.state.setState(data.batch, job.id, state, file));
  return record;
}

/**
 * A job that ends without an image (failed, cancelled, stalled) may be a copy of one whose image is
 * already saved (a worker that died after the write, before the queue heard of it): that record is
 * the truth and stays. Its manifest line and batch state are written again instead of a failure
 * that would hide a paid image and have the next run pay for it again. A store that cannot answer
 * throws: nothing is overwritten on a guess.
 */
async function keepFinished(deps: FinalizeDeps, store: BatchStore, job: FinalJob): Promise<ManifestRecord | null> {
  const found = await findExistingImage(store, { id: job.id, file: job.data.file });
  if (!found) return null;
  await appendRecord(store, deps.batchDir(job.data.batch), found);
  await deps.state.setState(job.data.batch, job.id, found.status, found.file ?? undefined);
  return found;
}
