import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../errors.js';
import { readRegularFile } from '../regular-file.js';
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

/** Reads and validates one sidecar; throws on a missing, unreadable or invalid file. */
export async function readSidecar(file: string): Promise<ManifestRecord> {
  // Never through a link planted under a sidecar's name: its target is outside the batch folder.
  const read = await readRegularFile(file, { maxBytes: SIDECAR_MAX_BYTES, noFollow: true });
  if (!read.ok) throw Object.assign(new Error(`${file}: ${read.message}`), { code: read.code });
  const text = read.bytes.toString('utf8');
  return parseSidecar(text, file);
}

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

/** The record in a stored sidecar, or null for anything else, a store that cannot answer included. */
export async function storedRecordOrNull(store: BatchStore, key: string): Promise<ManifestRecord | null> {
  const read = await readStoredSidecar(store, key).catch(() => null);
  return read?.kind === 'record' ? read.record : null;
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

/**
 * Every valid sidecar in `<batchDir>/images/`, sorted by index then id. Temp files are
 * ignored; unreadable or invalid sidecars are skipped and named in `warnings`.
 */
export async function listSidecars(batchDir: string): Promise<{ records: ManifestRecord[]; warnings: string[] }> {
  const dir = path.join(batchDir, IMAGES_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], warnings: [] };
    throw toStorageError(err, `cannot list ${dir}`);
  }
  const files = names.filter(isSidecarName).sort();
  const warnings: string[] = [];
  const results = await mapLimit(files, 32, async (name) => {
    try {
      return await readSidecar(path.join(dir, name));
    } catch (err) {
      warnings.push(`skipped sidecar ${IMAGES_DIR}/${name}: ${(err as Error).message}`);
      return null;
    }
  });
  const records = results.filter((r): r is ManifestRecord => r !== null).sort(compareRecords);
  return { records, warnings: warnings.sort() };
}
