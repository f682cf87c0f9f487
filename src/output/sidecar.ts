import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../errors.js';
import { manifestRecordSchema } from './record.js';
import type { ManifestRecord } from './record.js';
import { isTempName, toStorageError } from './atomic.js';
import { IMAGES_DIR } from './paths.js';
import type { BatchStore } from './storage/types.js';

/**
 * One `.json` per job next to its image. Sidecars are the source of truth that
 * `report` rebuilds the manifest from, and how a worker sees that an image is already paid
 * for, so every job that reaches a final state writes one, with or without an image.
 */

/** Records normalizeRecord made: a job's record goes to its sidecar and its manifest line, checked once. */
const normalized = new WeakSet<ManifestRecord>();

/** The record with its keys in schema order, so files read the same whoever wrote them. */
export function normalizeRecord(record: ManifestRecord): ManifestRecord {
  if (normalized.has(record)) return record;
  const parsed = manifestRecordSchema.safeParse(record);
  if (!parsed.success) {
    throw new Error(`invalid manifest record ${JSON.stringify(record.id)}: ${parsed.error.message}`);
  }
  const ordered: Record<string, unknown> = {};
  for (const k of Object.keys(manifestRecordSchema.shape)) ordered[k] = (parsed.data as Record<string, unknown>)[k];
  normalized.add(ordered as ManifestRecord);
  return ordered as ManifestRecord;
}

/** A sidecar's contents: the record, validated and ordered, indented for people. */
export function sidecarText(record: ManifestRecord): string {
  return `${JSON.stringify(normalizeRecord(record), null, 2)}\n`;
}

/** A sidecar is one record: far below this. */
export const SIDECAR_MAX_BYTES = 1024 * 1024;

export type StoredSidecar =
  | { kind: 'record'; record: ManifestRecord }
  | { kind: 'missing' }
  /** There, but not a record nightshift can trust: refused (a planted link), not JSON, not a record. */
  | { kind: 'unreadable'; reason: string };

/**
 * A sidecar from a batch's folder or bucket, by its key. A store that cannot answer at all (S3 away)
 * throws its StorageError: "cannot tell" must never read as "not there", which would pay again.
 */
export async function readStoredSidecar(store: BatchStore, key: string): Promise<StoredSidecar> {
  let bytes: Buffer | null;
  try {
    bytes = await store.get(key, SIDECAR_MAX_BYTES);
  } catch (err) {
    if (err instanceof StorageError) throw err;
    return { kind: 'unreadable', reason: err instanceof Error ? err.message : String(err) };
  }
  if (bytes === null) return { kind: 'missing' };
  try {
    return { kind: 'record', record: parseSidecar(bytes.toString('utf8'), key) };
  } catch (err) {
    return { kind: 'unreadable', reason: (err as Error).message };
  }
}

/** Validates a sidecar's text (`file` names it in errors); throws when it is not a nightshift record. */
export function parseSidecar(text: string, file: string): ManifestRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  const parsed = manifestRecordSchema.safeParse(json);
  if (!parsed.success)
    throw new Error(`${file}: not a nightshift record (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return parsed.data;
}

/** Runs `fn` over `items` with at most `limit` in flight (10,000 sidecars must not hit EMFILE). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function compareRecords(a: ManifestRecord, b: ManifestRecord): number {
  return a.index - b.index || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** A file name in `images/` that is a sidecar: not a temp file of a write in progress, not hidden. */
export function isSidecarName(n: string): boolean {
  return n.endsWith('.json') && !isTempName(n) && !n.startsWith('.');
}

/** The sidecars' names in `<batchDir>/images/`, sorted; a batch with no images folder has none. */
export async function sidecarNames(batchDir: string): Promise<string[]> {
  const dir = path.join(batchDir, IMAGES_DIR);
  try {
    return (await readdir(dir)).filter(isSidecarName).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw toStorageError(err, `cannot list ${dir}`);
  }
}

/**
 * The records of the sidecars at `keys`, a folder's or a bucket's: one that is there but cannot be
 * trusted is skipped and named in `warnings`; a store that cannot answer throws (a rebuild must not
 * drop what it could not read).
 */
export async function readSidecars(
  store: BatchStore,
  keys: readonly string[],
  concurrency: number,
): Promise<{ records: ManifestRecord[]; warnings: string[] }> {
  const warnings: string[] = [];
  const read = await mapLimit(keys, concurrency, async (key) => {
    const r = await readStoredSidecar(store, key);
    if (r.kind === 'unreadable') warnings.push(`skipped sidecar ${key}: ${r.reason}`);
    return r.kind === 'record' ? r.record : null;
  });
  return { records: read.filter((r): r is ManifestRecord => r !== null), warnings: warnings.sort() };
}
