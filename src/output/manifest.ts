import { createHash } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { manifestRecordSchema } from './record.js';
import type { ManifestRecord } from './record.js';
import { cleanStaleTemps, toStorageError, writeFileAtomic } from './atomic.js';
import { IMAGES_DIR, MANIFEST_FILE, resolveInBatch } from './paths.js';
import { compareRecords, listSidecars, mapLimit, normalizeRecord } from './sidecar.js';

/**
 * `<batch>/manifest.jsonl` (SPEC §8): append-only while workers run, one line per job
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
    // The folder nearly always exists (the sidecar went there first): create it only when missing.
    fh = await open(file, 'a').catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      await mkdir(batchDir, { recursive: true });
      return open(file, 'a');
    });
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

function parseLine(text: string): ManifestRecord | null {
  try {
    const r = manifestRecordSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

export interface ManifestRead {
  /** Last record per id, in order of each id's first appearance. */
  records: ManifestRecord[];
  /** Lines that are not a valid record (garbage, partial writes, a truncated last line). */
  badLines: number;
  /** True when the file does not end with a newline: a write was cut short. */
  truncatedTail: boolean;
}

/** Reads a manifest tolerantly; a missing file is an empty manifest. */
export async function readManifest(file: string): Promise<ManifestRead> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], badLines: 0, truncatedTail: false };
    throw toStorageError(err, `cannot read ${file}`);
  }
  const byId = new Map<string, ManifestRecord>();
  let badLines = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    let rec = parseLine(line);
    if (rec === null) {
      badLines++;
      // A partial line followed by a whole one glued to it (the next append after a cut-short
      // write): recover the whole one, which starts where the last '{"id":' does.
      const at = line.lastIndexOf('{"id":');
      if (at > 0) rec = parseLine(line.slice(at));
    }
    if (rec !== null) byId.set(rec.id, rec); // a Map keeps an id's first position while its value updates
  }
  return { records: [...byId.values()], badLines, truncatedTail: text.length > 0 && !text.endsWith('\n') };
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

async function sha256File(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

/**
 * The `report` logic: sidecars are the truth; a manifest line stands in for a job without
 * one (or wins when it is strictly newer, e.g. the sidecar write failed after a retry).
 * `bytes`/`sha256` are recomputed from the image when it exists and its size differs from
 * the record (or they are missing; `verify` hashes every image). The manifest is then
 * compacted. Sidecars are not rewritten: a sidecar that disagrees with its image keeps
 * findExistingImage from accepting a damaged file.
 */
export async function rebuildFromDisk(batchDir: string, opts: { verify?: boolean } = {}): Promise<RebuildResult> {
  await cleanStaleTemps(batchDir, STALE_TEMP_MS);
  await cleanStaleTemps(path.join(batchDir, IMAGES_DIR), STALE_TEMP_MS);
  const { records: sidecars, warnings } = await listSidecars(batchDir);
  const manifest = await readManifest(manifestPath(batchDir));
  const fromManifest = new Map(manifest.records.map((r) => [r.id, r]));

  const merged = new Map<string, ManifestRecord>();
  let missing = 0;
  for (const s of sidecars) {
    const m = fromManifest.get(s.id);
    if (m === undefined) missing++;
    merged.set(s.id, m !== undefined && m.finished_at > s.finished_at ? m : s);
  }
  for (const m of manifest.records) if (!merged.has(m.id)) merged.set(m.id, m);

  const records = await mapLimit([...merged.values()], 16, async (rec) => {
    if (rec.file === null) return rec;
    let abs: string;
    try {
      abs = resolveInBatch(batchDir, rec.file);
    } catch {
      warnings.push(`${rec.id}: file path ${JSON.stringify(rec.file)} is outside the batch folder`);
      return rec;
    }
    try {
      const st = await stat(abs);
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      if (!opts.verify && st.size === rec.bytes && rec.sha256 !== null) return rec;
      const sha256 = await sha256File(abs);
      if (st.size === rec.bytes && sha256 === rec.sha256) return rec;
      warnings.push(
        `${rec.file}: on disk ${st.size} bytes, recorded ${rec.bytes ?? 'none'}; manifest updated from the file`,
      );
      return { ...rec, bytes: st.size, sha256 };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw toStorageError(err, `cannot read ${abs}`);
      if (rec.status !== 'failed') warnings.push(`${rec.file}: image missing for ${rec.status} job ${rec.id}`);
      return rec;
    }
  });
  records.sort(compareRecords);
  await compactManifest(batchDir, records);
  const truncated = manifest.badLines;
  return { records, repaired: { missing, truncated }, warnings };
}
