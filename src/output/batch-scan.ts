import { closeSync, constants, fstatSync, lstatSync, openSync, readSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ManifestRecord } from './record.js';
import { isTempName, toStorageError } from './atomic.js';
import { IMAGES_DIR, resolveInBatch } from './paths.js';
import { parseSidecar, SIDECAR_MAX_BYTES } from './sidecar.js';
import { finishedImage } from './image-writer.js';

/**
 * What a batch folder already holds, found with one listing of its images folder: the disk decides
 * what was paid. File names are `<index:05>-<slug>-<id8>.<ext>`, so the listing alone gives the
 * highest index in use and which sidecars may belong to a job; only those are read.
 */
export interface BatchScan {
  /** The highest index of any image or sidecar in the folder; 0 when there is none. */
  maxIndex: number;
  /** Sidecar names (in `images/`) by the 8 hex digits their name ends with. */
  sidecarsById8: Map<string, string[]>;
}

/** The job a sidecar may belong to: its id, and the slug and 8 digits its file names carry. */
export interface JobOnDisk {
  id: string;
  id8: string;
  slug: string;
}

export type DiskVerdict =
  /** Its image is on disk, intact: paid for, nothing to do. */
  | { kind: 'finished'; record: ManifestRecord }
  /**
   * Its name is there without a finished image (it failed, or its image is damaged or replaced, or
   * its sidecar cannot be trusted): it runs again under that name, and its writes replace what is there.
   */
  | { kind: 'rerun'; sidecar: string };

const NAME = /^(\d+)-(?:(.*)-)?([0-9a-f]{8})\.([a-z0-9]+)$/;

export async function scanBatch(batchDir: string): Promise<BatchScan> {
  const dir = path.join(batchDir, IMAGES_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { maxIndex: 0, sidecarsById8: new Map() };
    throw toStorageError(err, `cannot list ${dir}`);
  }
  return scanNames(names);
}

/** The scan of a listing of `images/` (file names, without the folder). */
export function scanNames(names: Iterable<string>): BatchScan {
  let maxIndex = 0;
  const sidecarsById8 = new Map<string, string[]>();
  for (const name of names) {
    if (isTempName(name)) continue;
    const m = NAME.exec(name);
    if (!m) continue;
    const index = Number(m[1]);
    if (Number.isSafeInteger(index) && index > maxIndex) maxIndex = index;
    if (m[4] !== 'json') continue;
    const list = sidecarsById8.get(m[3]!);
    if (list) list.push(name);
    else sidecarsById8.set(m[3]!, [name]);
  }
  return { maxIndex, sidecarsById8 };
}

/** The slug a sidecar's name carries (`00001-a-cat-ab12cd34.json` → `a-cat`), if any. */
export function slugOf(name: string): string | undefined {
  return NAME.exec(name)?.[2];
}

/** Jobs judged per turn of the event loop. */
const CHUNK = 256;

/**
 * What the disk says about each job that has a sidecar in the scan: finished (its own sidecar by its
 * full id — 8 hex digits collide in large batches — and its image intact), or to run again under its
 * name (its own sidecar without an intact image; or a sidecar under its slug and digits that cannot be
 * read, such as a planted link). Jobs with neither are absent from the result.
 *
 * The files are read synchronously, a chunk per turn of the event loop: `enqueue` runs nothing else
 * meanwhile, and for a folder of 100,000 images the thread pool's round trips cost several times
 * the reads themselves.
 */
export async function judgeOnDisk(
  batchDir: string,
  scan: BatchScan,
  jobs: readonly JobOnDisk[],
): Promise<Map<string, DiskVerdict>> {
  const candidates = jobs.filter((j) => scan.sidecarsById8.has(j.id8));
  const out = new Map<string, DiskVerdict>();
  for (let i = 0; i < candidates.length; i += CHUNK) {
    if (i > 0) await new Promise((r) => setImmediate(r));
    for (const job of candidates.slice(i, i + CHUNK)) {
      const v = judgeJob(batchDir, job, scan.sidecarsById8.get(job.id8)!);
      if (v) out.set(job.id, v);
    }
  }
  return out;
}

/**
 * A sidecar under a job's 8 digits, as read: the job's own record, `another` job's, or `unreadable`
 * (not a regular file, too large, not a record).
 */
export interface SidecarRead {
  name: string;
  read: ManifestRecord | 'another' | 'unreadable';
}

/**
 * The rule a folder and a bucket both apply to the sidecars under a job's digits, read in turn:
 * finished at the first of its own whose image is intact; else run again under its own sidecar's
 * name, or under an unreadable one that carries its slug. Null: the disk knows nothing of the job.
 */
export function verdictFrom(
  job: JobOnDisk,
  sidecars: Iterable<SidecarRead>,
  intact: (record: ManifestRecord) => boolean,
): DiskVerdict | null {
  let own: DiskVerdict | null = null;
  let untrusted: DiskVerdict | null = null;
  for (const { name, read } of sidecars) {
    const sidecar = `${IMAGES_DIR}/${name}`;
    if (read === 'unreadable') {
      if (slugOf(name) === job.slug) untrusted ??= { kind: 'rerun', sidecar };
    } else if (read !== 'another') {
      if (intact(read)) return { kind: 'finished', record: read };
      own ??= { kind: 'rerun', sidecar };
    }
  }
  return own ?? untrusted;
}

function judgeJob(batchDir: string, job: JobOnDisk, sidecars: string[]): DiskVerdict | null {
  // Read lazily: the first finished one ends the search.
  function* reads(): Generator<SidecarRead> {
    for (const name of sidecars) yield { name, read: readSidecarOf(path.join(batchDir, IMAGES_DIR, name), job.id) };
  }
  return verdictFrom(job, reads(), (record) => imageIntactSync(batchDir, record));
}

/** The job's record in this sidecar, or why not (see SidecarRead). */
function readSidecarOf(file: string, jobId: string): SidecarRead['read'] {
  let fd: number | undefined;
  try {
    // O_NOFOLLOW: a symlink planted in the folder is never read through.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > SIDECAR_MAX_BYTES) return 'unreadable';
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    const record = parseSidecar(buf.toString('utf8', 0, off), file);
    return record.id === jobId ? record : 'another';
  } catch {
    return 'unreadable';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A finished record whose image is a regular file (not a symlink) of exactly the recorded size. */
function imageIntactSync(batchDir: string, record: ManifestRecord): boolean {
  const image = finishedImage(record);
  if (!image) return false;
  try {
    const st = lstatSync(resolveInBatch(batchDir, image.file));
    return st.isFile() && st.size === image.bytes;
  } catch {
    return false;
  }
}

/** The image file (and its index) of a sidecar's job, for a job that runs again under its old name. */
export function imageNameOf(sidecar: string, ext: string): { file: string; index: number } {
  const base = sidecar.slice(0, -'.json'.length);
  return { file: `${base}.${ext}`, index: Number(/(\d+)-[^/]*$/.exec(base)?.[1] ?? 0) };
}
