import type { FileData } from '../atomic.js';

/** One stored file or object, named relative to its batch (`images/00001-cat-ab12cd34.png`). */
export interface StoredObject {
  key: string;
  size: number;
  /** When it was last written, for telling a stale thumbnail from a fresh one; null when unknown. */
  modifiedMs: number | null;
}

/**
 * Where one batch's output lives: a folder on disk or a prefix in an S3 bucket. Keys are relative to
 * the batch, with forward slashes. The worker's writes and its "already paid?" checks go through
 * this, so both kinds of output keep the same promise: a paid image is found by its job id.
 */
export interface BatchStore {
  /** `folder`: appendable files and a fast local listing; `objects`: whole objects only. */
  readonly kind: 'folder' | 'objects';
  /** The batch's location, for messages (a path, or s3://bucket/prefix). */
  readonly where: string;
  /**
   * Writes whole files or objects in this order (an image before its sidecar): each is visible whole
   * or not at all, and a later one never stands without an earlier one. `durable: false` skips the
   * fsync for what can be rebuilt (thumbnails).
   */
  put(objects: ReadonlyArray<{ key: string; data: FileData }>, opts?: { durable?: boolean }): Promise<void>;
  /** The file or object under `key`, or null when there is none (or, in a folder, it is not a regular file). */
  head(key: string): Promise<StoredObject | null>;
  /** Its bytes, or null when there is none; throws when it is larger than `maxBytes` or cannot be read. */
  get(key: string, maxBytes: number): Promise<Buffer | null>;
  /** Every file or object whose key starts with `prefix` (a folder such as `images/`), in one listing. */
  list(prefix: string): Promise<StoredObject[]>;
}

/** Every batch's output: a folder per batch under `--out`, or a prefix per batch under `s3://BUCKET/PREFIX`. */
export interface OutputRoot {
  readonly kind: BatchStore['kind'];
  /** `--out` as given, for messages. */
  readonly where: string;
  /** The store of one batch; `dir` is the batch's folder name (`night` or `mock/night`). */
  batch(dir: string): BatchStore;
  /** Refuses to start when the output cannot be written (workers on many machines share it). */
  checkWritable(): Promise<void>;
}

/** The whole of a stored file or object as one buffer. */
export function joinData(data: FileData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  return Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
}
