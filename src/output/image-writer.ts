import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { JobData } from '../queue/job-data.js';
import type { ManifestRecord } from './record.js';
import { pngTextParts, isPng } from '../metadata/png-text.js';
import { writeFileAtomic } from './atomic.js';
import { formatParameters } from '../metadata/parameters.js';
import { resolveInBatch, sidecarPathFor } from './paths.js';
import { readSidecar } from './sidecar.js';

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
 * What `saveImage` would write, computed without touching the disk: PNGs get `parameters` and
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

/**
 * Writes a generated image to `<batchDir>/<job.file>` atomically (see prepareImage). Throws
 * StorageError on filesystem failures (the caller keeps the bytes and retries the write, never
 * the request).
 */
export async function saveImage(
  batchDir: string,
  job: SaveJob,
  bytes: Buffer,
  meta: { seed: number; mime: string },
): Promise<SavedImage> {
  const img = prepareImage(batchDir, job, bytes, meta);
  await writeFileAtomic(img.target, img.parts);
  return { file: img.file, bytes: img.bytes, sha256: img.sha256 };
}

/**
 * The job's finished record when its image is already on disk: a sidecar for this job id
 * with status succeeded or filtered, and the image file present with exactly the recorded
 * size (a truncated or replaced file does not count). How a worker avoids paying twice.
 * With `verifyHash`, the image's sha256 must match too (reads the whole file).
 */
export async function findExistingImage(
  batchDir: string,
  job: Pick<SaveJob, 'id' | 'file'>,
  opts: { verifyHash?: boolean } = {},
): Promise<ManifestRecord | null> {
  let record: ManifestRecord;
  try {
    record = await readSidecar(resolveInBatch(batchDir, sidecarPathFor(job.file)));
  } catch {
    return null; // no sidecar, or one we cannot trust: do the work
  }
  if (record.id !== job.id || (record.status !== 'succeeded' && record.status !== 'filtered')) return null;
  if (record.file === null || record.bytes === null) return null;
  try {
    const abs = resolveInBatch(batchDir, record.file);
    const st = await stat(abs);
    if (!st.isFile() || st.size !== record.bytes) return null;
    if (opts.verifyHash) {
      const digest = createHash('sha256')
        .update(await readFile(abs))
        .digest('hex');
      if (digest !== record.sha256) return null;
    }
  } catch {
    return null;
  }
  return record;
}
