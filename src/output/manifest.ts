import type { Stats } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../errors.js';
import { openRegularFile } from '../regular-file.js';
import type { ManifestRecord } from './record.js';
import { cleanStaleTemps, ensureDir, toStorageError, writeFileAtomic } from './atomic.js';
import { hashImage, manifestLines, MAX_MANIFEST_BYTES } from './manifest-read.js';
import { APPEND_FLAGS, appendOpenMessage, appendProblem } from './safe-dirs.js';
import { IMAGES_DIR, MANIFEST_FILE, resolveInBatch } from './paths.js';
import { compareRecords, mapLimit, normalizeRecord, readSidecars, sidecarNames } from './sidecar.js';
import { folderStore } from './storage/folder-store.js';

/**
 * `<batch>/manifest.jsonl`: append-only while workers run, one line per job
 * reaching a final state; readers take the last line per id; `report` compacts it.
 */

export function manifestPath(batchDir: string): string {
  return path.join(batchDir, MANIFEST_FILE);
}

/**
 * Appends one record as one line. Lines go out in a single write() on an O_APPEND descriptor: on
 * a local filesystem concurrent appenders (processes) never interleave, so lines stay whole. (NFS
 * does not honour O_APPEND atomically; the sidecars let `report` repair whatever it mangles.)
 *
 * Group commit: lines appended while a write is under way go out together in the next one, so 32
 * jobs finishing at once cost one open/write/close, not 32. The promise resolves once the line is
 * on disk; a job is acknowledged only after that.
 */
export async function appendManifest(batchDir: string, record: ManifestRecord): Promise<void> {
  const line = Buffer.from(`${JSON.stringify(normalizeRecord(record))}\n`, 'utf8');
  const file = manifestPath(batchDir);
  let w = writers.get(file);
  if (!w) {
    w = { pending: [], running: false };
    writers.set(file, w);
  }
  const done = new Promise<void>((resolve, reject) => w.pending.push({ line, resolve, reject }));
  if (!w.running) void drain(batchDir, file, w);
  await done;
}

interface PendingLine {
  line: Buffer;
  resolve: () => void;
  reject: (err: unknown) => void;
}
interface Writer {
  pending: PendingLine[];
  running: boolean;
}
const writers = new Map<string, Writer>();

async function drain(batchDir: string, file: string, w: Writer): Promise<void> {
  w.running = true;
  try {
    while (w.pending.length > 0) {
      const group = w.pending.splice(0);
      try {
        await appendLines(batchDir, file, Buffer.concat(group.map((g) => g.line)));
        for (const g of group) g.resolve();
      } catch (err) {
        for (const g of group) g.reject(err);
      }
    }
  } finally {
    w.running = false;
    writers.delete(file);
  }
}

async function appendLines(batchDir: string, file: string, body: Buffer): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    // The folder nearly always exists (the sidecar went there first); it must be a real one.
    await ensureDir(batchDir);
    // Never through a planted link, never blocking on a FIFO: the descriptor is judged, not the name.
    fh = await open(file, APPEND_FLAGS, 0o644).catch((err: unknown) => {
      throw new StorageError(`${file} ${appendOpenMessage(err)}`, (err as NodeJS.ErrnoException).code ?? 'EIO');
    });
    const problem = appendProblem(await fh.stat());
    if (problem !== null) throw new StorageError(`${file} ${problem}`, 'EPERM');
    const { bytesWritten } = await fh.write(body, 0, body.length);
    // A short write (disk full mid-line) leaves a partial line that readers skip; say so.
    if (bytesWritten !== body.length) {
      throw Object.assign(new Error(`short write (${bytesWritten} of ${body.length} bytes)`), { code: 'ENOSPC' });
    }
  } catch (err) {
    throw toStorageError(err, `cannot append to ${file}`);
  } finally {
    await fh?.close().catch(() => {});
  }
}

export interface ManifestRead {
  /** Last record per id, in order of each id's first appearance. */
  records: ManifestRecord[];
  /** Lines that are not a valid record (garbage, partial writes, a truncated last line). */
  badLines: number;
  /** True when the file does not end with a newline: a write was cut short. */
  truncatedTail: boolean;
  /** Why the file was not read at all (a link, a FIFO…); absent when it was read or is missing. */
  refused?: string;
}

/** Reads a manifest tolerantly, a chunk at a time; a missing file is an empty manifest. Never follows a link. */
export async function readManifest(file: string): Promise<ManifestRead> {
  const opened = await openRegularFile(file, { maxBytes: MAX_MANIFEST_BYTES, noFollow: true });
  if (!opened.ok) {
    const empty = { records: [], badLines: 0, truncatedTail: false };
    return opened.code === 'ENOENT' ? empty : { ...empty, refused: opened.message };
  }
  try {
    return await manifestLines(opened.fh);
  } catch (err) {
    throw toStorageError(err, `cannot read ${file}`);
  } finally {
    await opened.fh.close().catch(() => {});
  }
}

/** Dedupes by id (last wins), sorts by index then id, and replaces the manifest atomically. */
export async function compactManifest(batchDir: string, records: ManifestRecord[]): Promise<void> {
  const byId = new Map<string, ManifestRecord>();
  for (const r of records) byId.set(r.id, r);
  const sorted = [...byId.values()].sort(compareRecords);
  const body = sorted.map((r) => `${JSON.stringify(normalizeRecord(r))}\n`).join('');
  await writeFileAtomic(manifestPath(batchDir), body);
}

export interface RebuildResult {
  records: ManifestRecord[];
  repaired: {
    /** Jobs that had a sidecar but no valid manifest line. */
    missing: number;
    /** Garbage, partial or truncated manifest lines dropped. */
    truncated: number;
  };
  /** Skipped sidecars, images that are missing or differ from their sidecar. */
  warnings: string[];
}

/** Temp files this old cannot belong to a write still in progress. */
const STALE_TEMP_MS = 60 * 60 * 1000;
/** How every image nightshift writes is named, relative to the batch folder. */
const IMAGE_FILE = /^images\/[A-Za-z0-9._-]+$/;
/** Larger than any image the API returns. */
const MAX_IMAGE_BYTES = 1024 * 1024 * 1024;

/**
 * The `report` logic: sidecars are the truth; a manifest line stands in for a job without
 * one (or wins when it is strictly newer, e.g. the sidecar write failed after a retry).
 * `bytes`/`sha256` are recomputed from the image when it exists and its size differs from
 * the record (or they are missing; `verify` hashes every image). The manifest is then
 * compacted. Sidecars are not rewritten: a sidecar that disagrees with its image keeps
 * findExistingImage from accepting a damaged file.
 */
/**
 * A record's image as it is on disk: bytes and sha256 recomputed when they differ from the record.
 * The image is read only when it is a regular file in the folder; a link (or anything else planted
 * under its name) is left unread and named in `warnings`.
 */
async function checkImage(
  abs: string,
  rec: ManifestRecord,
  ctx: { verify: boolean; warnings: string[] },
): Promise<ManifestRecord> {
  let st: Stats;
  try {
    st = await lstat(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toStorageError(err, `cannot read ${abs}`);
    if (rec.status !== 'failed') ctx.warnings.push(`${rec.file}: image missing for ${rec.status} job ${rec.id}`);
    return rec;
  }
  if (!st.isFile()) {
    const what = st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file';
    ctx.warnings.push(`${rec.file}: not read, it is ${what} (nightshift does not follow links it did not create)`);
    return rec;
  }
  if (!ctx.verify && st.size === rec.bytes && rec.sha256 !== null) return rec;
  const h = await hashImage(abs, MAX_IMAGE_BYTES);
  if (!h.ok) {
    ctx.warnings.push(`${rec.file}: not read, it ${h.message}`);
    return rec;
  }
  if (h.size === rec.bytes && h.sha256 === rec.sha256) return rec;
  ctx.warnings.push(
    `${rec.file}: on disk ${h.size} bytes, recorded ${rec.bytes ?? 'none'}; manifest updated from the file`,
  );
  return { ...rec, bytes: h.size, sha256: h.sha256 };
}

/** A record as its image is on disk (see checkImage); a file path outside images/ is named in `warnings`. */
export async function checkRecordImage(
  batchDir: string,
  rec: ManifestRecord,
  ctx: { verify: boolean; warnings: string[] },
): Promise<ManifestRecord> {
  if (rec.file === null) return rec;
  // Only a name directly inside images/ (a real folder, checked before): a deeper path could pass
  // through a planted link to a folder elsewhere, which lstat of the last name would not see.
  let abs: string;
  try {
    if (!IMAGE_FILE.test(rec.file)) throw new Error('not an image path');
    abs = resolveInBatch(batchDir, rec.file);
  } catch {
    ctx.warnings.push(`${rec.id}: file path ${JSON.stringify(rec.file)} is not an image inside the batch folder`);
    return rec;
  }
  return checkImage(abs, rec, ctx);
}

/** Every valid sidecar in `<batchDir>/images/`, sorted by index then id; bad ones are named in `warnings`. */
export async function listSidecars(batchDir: string): Promise<{ records: ManifestRecord[]; warnings: string[] }> {
  const keys = (await sidecarNames(batchDir)).map((n) => `${IMAGES_DIR}/${n}`);
  const read = await readSidecars(folderStore(batchDir), keys, 32);
  read.records.sort(compareRecords);
  return read;
}

export async function rebuildFromDisk(batchDir: string, opts: { verify?: boolean } = {}): Promise<RebuildResult> {
  await cleanStaleTemps(batchDir, STALE_TEMP_MS);
  await cleanStaleTemps(path.join(batchDir, IMAGES_DIR), STALE_TEMP_MS);
  const { records: sidecars, warnings } = await listSidecars(batchDir);
  const manifest = await readManifest(manifestPath(batchDir));
  if (manifest.refused !== undefined) warnings.push(`${MANIFEST_FILE} not read: it ${manifest.refused}`);
  const fromManifest = new Map(manifest.records.map((r) => [r.id, r]));

  const merged = new Map<string, ManifestRecord>();
  let missing = 0;
  for (const s of sidecars) {
    const m = fromManifest.get(s.id);
    if (m === undefined) missing++;
    merged.set(s.id, m !== undefined && m.finished_at > s.finished_at ? m : s);
  }
  for (const m of manifest.records) if (!merged.has(m.id)) merged.set(m.id, m);

  const ctx = { verify: opts.verify === true, warnings };
  const records = await mapLimit([...merged.values()], 16, (rec) => checkRecordImage(batchDir, rec, ctx));
  records.sort(compareRecords);
  await compactManifest(batchDir, records);
  const truncated = manifest.badLines;
  return { records, repaired: { missing, truncated }, warnings };
}
