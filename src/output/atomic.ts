import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../errors.js';
import { recentFindings } from './recent.js';
import { ensureRealDirs } from './safe-dirs.js';

/**
 * Atomic writes: a reader sees the old file or the whole new one, never a part,
 * even when the process is killed or the disk fills mid-write.
 */

/** Turns a filesystem error into a StorageError that keeps its errno code and names the path. */
export function toStorageError(err: unknown, what: string): StorageError {
  if (err instanceof StorageError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  const code = typeof e?.code === 'string' ? e.code : 'EIO';
  const detail = e instanceof Error ? e.message : String(err);
  return new StorageError(`${what}: ${detail}`, code, { cause: err });
}

/** Temp files start with '.' and end with '.tmp' so listings and cleanups can tell them apart. */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

// Unique per process (pid + a random tag, in case a pid is reused) and per write (a counter).
const TEMP_TAG = `${process.pid}.${randomBytes(4).toString('hex')}`;
let tempSeq = 0;

function tempPathFor(target: string): string {
  // Keep the temp name well under NAME_MAX (255) however long the target's name is.
  const base = path.basename(target).slice(0, 120);
  return path.join(path.dirname(target), `.${base}.${TEMP_TAG}.${(tempSeq++).toString(36)}.tmp`);
}

/** Folders this process made or found real lately: a worker writes thousands of files into a handful. */
const madeDirs = recentFindings(1000, 256);

/**
 * Folders kept open for their fsync: a worker renames thousands of files into a handful of folders,
 * and opening and closing the folder around every fsync costs more than the fsync. A handle is used
 * for a second at most, so a folder removed and made again (by another process) is synced through
 * its new handle within a second, and a folder that could not be opened is tried again; a folder
 * that failed a write is dropped at once. Bounded.
 */
const MAX_OPEN_DIRS = 32;
export const DIR_HANDLE_MS = 1000;
const openDirs = new Map<string, { fh: Promise<FileHandle | null>; openedAt: number }>();

function dirHandle(dir: string): Promise<FileHandle | null> {
  const now = Date.now();
  const held = openDirs.get(dir);
  if (held && now - held.openedAt < DIR_HANDLE_MS && now >= held.openedAt) return held.fh;
  if (held) forgetDir(dir);
  // Windows and some network filesystems cannot open a directory: null, and no fsync there.
  const fh = open(dir, 'r').catch(() => null);
  openDirs.set(dir, { fh, openedAt: now });
  if (openDirs.size > MAX_OPEN_DIRS) forgetDir(openDirs.keys().next().value!);
  return fh;
}

function forgetDir(dir: string): void {
  const held = openDirs.get(dir);
  if (!held) return;
  openDirs.delete(dir);
  // A sync still running on it finishes first: FileHandle.close waits for its pending operations.
  void held.fh.then((h) => h?.close()).catch(() => {});
}

/** fsync a directory so the rename itself survives a power cut. Not possible everywhere: best effort. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await dirHandle(dir);
  try {
    await fh?.sync();
  } catch {
    // Some filesystems cannot sync a directory; a handle gone bad is opened again next time.
    forgetDir(dir);
  }
}

export type FileData = Buffer | string | readonly Buffer[];

export interface WriteOptions {
  /** fsync the file before the rename. Default true. */
  fsync?: boolean;
  /** fsync the folder after the rename. Default: as fsync. */
  syncDir?: boolean;
  /**
   * The folder below which no link is followed: every folder from it down to the target's must be
   * a real one (the batch folder, or `--out`). Without it only the target's own folder is checked.
   */
  root?: string;
}

/**
 * The folder a file goes into must be a real folder: a planted link there would have the file
 * written wherever it points. Created when missing (and checked again once made).
 */
export async function ensureDir(dir: string, opts: { root?: string; target?: string } = {}): Promise<void> {
  const key = opts.root === undefined ? dir : `${opts.root}\0${dir}`;
  if (madeDirs.has(key)) return;
  try {
    if (opts.root !== undefined) {
      await ensureRealDirs(opts.root, dir);
    } else {
      await mkdir(dir, { recursive: true });
      const st = await lstat(dir);
      if (!st.isDirectory()) {
        const what = st.isSymbolicLink()
          ? 'is a symbolic link (nightshift does not follow links it did not create)'
          : 'is not a folder';
        throw new StorageError(`cannot write into ${dir}: it ${what}`, st.isSymbolicLink() ? 'ELOOP' : 'ENOTDIR');
      }
    }
    madeDirs.add(key);
  } catch (err) {
    throw toStorageError(err, `cannot create folder ${dir}${opts.target ? ` for ${opts.target}` : ''}`);
  }
}

/** Writes (and fsyncs) a temp file beside `target`; returns its path. Cleans up after itself on failure. */
async function writeTemp(target: string, data: FileData, opts: { doSync: boolean; root?: string }): Promise<string> {
  const dir = path.dirname(target);
  await ensureDir(dir, { target, ...(opts.root !== undefined ? { root: opts.root } : {}) });
  const tmp = tempPathFor(target);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'wx'); // 'wx': never follow or reuse something already there
    if (typeof data === 'string' || Buffer.isBuffer(data)) await fh.writeFile(data);
    else await writeParts(fh, data);
    if (opts.doSync) await fh.sync();
    await fh.close();
    fh = undefined;
    return tmp;
  } catch (err) {
    await fh?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    // The folder may be gone or replaced: check again next time.
    madeDirs.forget((k) => k === dir || k.endsWith(`\0${dir}`));
    forgetDir(dir);
    throw toStorageError(err, `cannot write ${target}`);
  }
}

/**
 * Writes `data` to `target` atomically: temp file in the same folder (same filesystem, so the
 * rename is atomic), fsync, rename over the target, fsync the folder. Creates parent folders.
 * Throws a StorageError carrying the errno code (ENOSPC, EACCES, EROFS, EDQUOT, …); on
 * failure the temp file is removed and the target is untouched.
 */
export async function writeFileAtomic(target: string, data: FileData, opts: WriteOptions = {}): Promise<void> {
  await writeFilesAtomic([{ target, data }], opts);
}

/**
 * Several files that must appear together in this order (an image before its sidecar): all temp
 * files are written and fsynced at once, then renamed in order, then each folder is fsynced once.
 * A crash leaves a prefix of them in place, never a later one without an earlier one.
 */
export async function writeFilesAtomic(
  files: ReadonlyArray<{ target: string; data: FileData }>,
  opts: WriteOptions = {},
): Promise<void> {
  const doSync = opts.fsync ?? true;
  const temp = { doSync, ...(opts.root !== undefined ? { root: opts.root } : {}) };
  const written = await Promise.allSettled(files.map((f) => writeTemp(f.target, f.data, temp)));
  const temps = written.map((w) => (w.status === 'fulfilled' ? w.value : null));
  const failed = written.find((w): w is PromiseRejectedResult => w.status === 'rejected');
  let i = 0;
  try {
    if (failed) throw failed.reason;
    for (; i < files.length; i++) await rename(temps[i]!, files[i]!.target);
  } catch (err) {
    await Promise.all(temps.slice(i).map((t) => (t ? rm(t, { force: true }).catch(() => {}) : undefined)));
    throw toStorageError(err, `cannot write ${files[i]?.target ?? files[0]?.target}`);
  }
  if (doSync && opts.syncDir !== false) {
    for (const dir of new Set(files.map((f) => path.dirname(f.target)))) await fsyncDir(dir);
  }
}

/** One writev for all the pieces (one syscall, not one per piece); a short write finishes the rest. */
async function writeParts(fh: FileHandle, parts: readonly Buffer[]): Promise<void> {
  const total = parts.reduce((n, b) => n + b.length, 0);
  const { bytesWritten } = await fh.writev(parts as Buffer[]);
  if (bytesWritten < total) await writeAll(fh, Buffer.concat(parts as Buffer[]).subarray(bytesWritten));
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length;) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    if (bytesWritten === 0) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
    off += bytesWritten;
  }
}

/**
 * Removes temp files (`.*.tmp`) older than `olderThanMs` left in `dir` by killed processes.
 * Not recursive. Returns how many were removed; a missing folder is not an error.
 */
export async function cleanStaleTemps(dir: string, olderThanMs: number): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw toStorageError(err, `cannot list ${dir}`);
  }
  const cutoff = Date.now() - olderThanMs;
  let removed = 0;
  for (const name of names) {
    if (!isTempName(name)) continue;
    const p = path.join(dir, name);
    try {
      const st = await lstat(p);
      // Young temp files may belong to a write in progress in another process.
      if (!st.isFile() || st.mtimeMs > cutoff) continue;
      await rm(p, { force: true });
      removed++;
    } catch {
      // Gone already (another cleaner) or unreadable: nothing to do.
    }
  }
  return removed;
}
