import { createHash } from 'node:crypto';
import type { JobData } from '../queue/job-data.js';
import type { ManifestRecord } from './record.js';
import { pngTextParts, isPng } from '../metadata/png-text.js';
import { formatParameters } from '../metadata/parameters.js';
import { resolveInBatch, sidecarPathFor } from './paths.js';
import { readStoredSidecar } from './sidecar.js';
import { folderStore } from './storage/folder-store.js';
import type { BatchStore } from './storage/types.js';

export type SaveJob = JobData & { id: string };

export interface SavedImage {
  /** Relative to the batch folder (the job's `file`). */
  file: string;
  /** Size and digest of the bytes written, text chunks included. */
  bytes: number;
  sha256: string;
}

/** The PNG text chunks of a job: A1111 `parameters` and a `nightshift` JSON with exact values. */
export function pngTextFor(job: SaveJob, seed: number): Record<string, string> {
  return {
    parameters: formatParameters({ ...job, seed }, { jobId: job.id }),
    nightshift: JSON.stringify({
      v: 1,
      id: job.id,
      batch: job.batch,
      index: job.index,
      sample: job.sample,
      model: job.model,
      prompt: job.prompt,
      negative_prompt: job.negative_prompt,
      params: job.params,
      seed,
      requested_seed: job.seed,
    }),
  };
}

export interface PreparedImage extends SavedImage {
  /** Absolute path the image goes to. */
  target: string;
  /** The bytes to write, as pieces (views of the received bytes around any new text chunks). */
  parts: Buffer[];
}

/**
 * What goes to disk for a paid image, computed without touching the disk: PNGs get `parameters` and
 * `nightshift` text chunks with the seed the API returned; size and sha256 are of those bytes.
 * Lets the image and its sidecar be written together (writeFilesAtomic).
 */
export function prepareImage(
  batchDir: string,
  job: SaveJob,
  bytes: Buffer,
  meta: { seed: number; mime: string },
): PreparedImage {
  const target = resolveInBatch(batchDir, job.file);
  let parts: Buffer[] = [bytes];
  if (isPng(bytes) || meta.mime === 'image/png') {
    try {
      parts = pngTextParts(bytes, pngTextFor(job, meta.seed));
    } catch {
      // Not a well-formed PNG: the bytes are paid for, so keep them exactly as received
      // rather than lose them; judging the body is the API client's job.
      parts = [bytes];
    }
  }
  const hash = createHash('sha256');
  let length = 0;
  for (const part of parts) {
    hash.update(part);
    length += part.length;
  }
  return { file: job.file, bytes: length, sha256: hash.digest('hex'), target, parts };
}

/** The image a record says is finished (succeeded or filtered, with its file and size), or null. */
export function finishedImage(record: ManifestRecord): { file: string; bytes: number } | null {
  if (record.status !== 'succeeded' && record.status !== 'filtered') return null;
  if (record.file === null || record.bytes === null) return null;
  return { file: record.file, bytes: record.bytes };
}

/**
 * Whether a record's image is stored as recorded: a finished record, and its file (a regular file,
 * never a planted link) or object present with exactly the recorded size (a truncated or replaced
 * one does not count).
 */
async function imageIntact(store: BatchStore, record: ManifestRecord): Promise<boolean> {
  const image = finishedImage(record);
  if (!image) return false;
  // A store that cannot answer (S3 away) throws: "cannot tell" must never read as "not paid".
  const found = await store.head(image.file);
  return found !== null && found.size === image.bytes;
}

/**
 * The job's finished record when its image is already stored: the sidecar beside `job.file` is
 * this job's (its full id, not only the 8 digits in the name) and its image is intact. How a
 * worker avoids paying twice. `where` is a batch folder or any batch store.
 */
export async function findExistingImage(
  where: string | BatchStore,
  job: Pick<SaveJob, 'id' | 'file'>,
): Promise<ManifestRecord | null> {
  const store = typeof where === 'string' ? folderStore(where) : where;
  // A store that cannot answer throws: decide nothing yet. No sidecar, or one we cannot trust: do the work.
  const read = await readStoredSidecar(store, sidecarPathFor(job.file));
  if (read.kind !== 'record' || read.record.id !== job.id) return null;
  return (await imageIntact(store, read.record)) ? read.record : null;
}
