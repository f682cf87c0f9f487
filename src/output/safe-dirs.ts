import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, type Stats } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { EnvironmentError, StorageError, UsageError } from '../errors.js';
import { recentFindings } from './recent.js';

/**
 * The output folder is not a path to elsewhere. Below `--out`, nightshift writes only into folders
 * that are real folders (a symbolic link planted as `<batch>`, `images` or `thumbs` would send a
 * night of images, or a manifest append, wherever it points), and appends only to regular files it
 * owns alone. Folders are checked with lstat one level at a time and created the same way; `--out`
 * itself may be a link: it is the user's choice where the output goes.
 */

const LINK_HINT = 'nightshift does not follow links it did not create; move it away and run again';

/** What is wrong with `st` as a folder to write into, or null when it is a real folder. */
function folderProblem(st: Stats): string | null {
  if (st.isDirectory()) return null;
  if (st.isSymbolicLink()) return `is a symbolic link (${LINK_HINT})`;
  return 'is not a folder';
}

/** The folders from just below `root` down to `dir`; throws when `dir` is not inside `root`. */
function chain(root: string, dir: string): string[] {
  const rel = path.relative(path.resolve(root), path.resolve(dir));
  if (rel === '') return [];
  if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw new Error(`${dir} is not inside ${root}`);
  }
  const parts = rel.split(path.sep);
  return parts.map((_, i) => path.join(path.resolve(root), ...parts.slice(0, i + 1)));
}

function refusal(dir: string, problem: string): StorageError {
  return new StorageError(`cannot write into ${dir}: it ${problem}`, problem.includes('link') ? 'ELOOP' : 'ENOTDIR');
}

/**
 * Makes sure every folder from `root` (exclusive) down to `dir` is a real folder, creating the
 * missing ones one level at a time. Throws StorageError (ELOOP for a link) naming the first that
 * is not. `root` is created when missing.
 */
export async function ensureRealDirs(root: string, dir: string): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const p of chain(root, dir)) {
    let st: Stats;
    try {
      st = await lstat(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      // EEXIST: another process made it meanwhile; the lstat below judges what it made.
      await mkdir(p).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : Promise.reject(e)));
      st = await lstat(p);
    }
    const problem = folderProblem(st);
    if (problem !== null) throw refusal(p, problem);
  }
}

/** Folders checkRealDirs found real lately: a worker reads thousands of files below a handful. */
const realDirs = recentFindings(1000, 256);

/**
 * Like ensureRealDirs, for reading: no folder from `root` (exclusive) down to `dir` may be a link
 * (none is created; a missing one, or a file in its place, holds nothing to read). Throws
 * StorageError (ELOOP) naming the link.
 */
export async function checkRealDirs(root: string, dir: string): Promise<void> {
  const key = `${root}\0${dir}`;
  if (realDirs.has(key)) return;
  for (const p of chain(root, dir)) {
    let st: Stats;
    try {
      st = await lstat(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw err;
    }
    // A file where a folder should be holds nothing to read (as ENOTDIR says below it); only a
    // link is refused, since reading through it would read elsewhere.
    if (st.isSymbolicLink()) throw refusal(p, folderProblem(st)!);
    if (!st.isDirectory()) return;
  }
  realDirs.add(key);
}

/** ensureRealDirs for callers that cannot wait (a logger opens its file while being built). */
export function ensureRealDirsSync(root: string, dir: string): void {
  mkdirSync(root, { recursive: true });
  for (const p of chain(root, dir)) {
    let st: Stats;
    try {
      st = lstatSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      try {
        mkdirSync(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      st = lstatSync(p);
    }
    const problem = folderProblem(st);
    if (problem !== null) throw refusal(p, problem);
  }
}

/** Flags of an append that never follows a link, never blocks on a FIFO and never makes a terminal ours. */
export const APPEND_FLAGS =
  constants.O_WRONLY |
  constants.O_APPEND |
  constants.O_CREAT |
  constants.O_NOFOLLOW |
  constants.O_NONBLOCK |
  constants.O_NOCTTY;

/** Why an opened file must not be appended to, or null when it is a regular file with no other name. */
export function appendProblem(st: Stats): string | null {
  if (!st.isFile()) return 'is not a regular file';
  // Another name for the same file (a hard link) would have our lines written there too.
  if (st.nlink > 1) return `has ${st.nlink - 1} other hard link(s); nightshift appends only to a file it owns alone`;
  return null;
}

export function appendOpenMessage(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ELOOP') return `is a symbolic link (${LINK_HINT})`;
  if (code === 'ENXIO') return 'is a FIFO or socket, not a regular file';
  return err instanceof Error ? err.message : String(err);
}

/**
 * Opens a log file inside a batch folder for appending, as a file descriptor: every folder below
 * `root` must be a real one, the file itself is never a link followed (O_NOFOLLOW), a FIFO, a device
 * or a file with other hard links. Throws EnvironmentError (exit 3) naming the file. For `run.log`,
 * before a logger writes a line there: `pino.destination({ fd })`.
 */
export function openLogFileSafely(file: string, root: string): number {
  let fd: number | undefined;
  try {
    ensureRealDirsSync(root, path.dirname(file));
    fd = openSync(file, APPEND_FLAGS, 0o644);
    const problem = appendProblem(fstatSync(fd));
    if (problem !== null) throw new Error(problem);
    return fd;
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    const why = err instanceof StorageError ? err.message : `it ${appendOpenMessage(err)}`;
    throw new EnvironmentError(`cannot open the log file ${file}: ${why}`, { cause: err });
  }
}

/**
 * Opens `--log-file` for appending, as a file descriptor, before anything else happens: where the
 * user chose (a link there is theirs), but never a folder, a FIFO (which would block the process
 * until something reads it) or a socket. Its folder is created. Throws EnvironmentError (exit 3).
 */
export function openUserLogFile(file: string): number {
  let fd: number | undefined;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    fd = openSync(
      file,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK | constants.O_NOCTTY,
      0o644,
    );
    const st = fstatSync(fd);
    // A terminal or /dev/null is a fine place for lines; a FIFO with a reader is not a file either.
    if (!st.isFile() && !st.isCharacterDevice()) throw new Error('is not a regular file');
    return fd;
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EISDIR'
        ? 'is a folder'
        : code === 'ENXIO'
          ? 'is a FIFO or socket, not a regular file'
          : err instanceof Error
            ? err.message
            : String(err);
    throw new EnvironmentError(`cannot open the log file ${file} (--log-file): it ${why.replace(/^it /, '')}`, {
      cause: err,
    });
  }
}

export interface BatchFolderCheck {
  /** The `--out` folder. */
  out: string;
  /** The batch folder inside it (`<out>/<batch>`, or deeper). */
  dir: string;
  /** The batch is named by the user and must already exist (`report`): its absence is exit 2. */
  mustExist?: boolean;
}

/** Entries of a batch folder nightshift creates and then writes through or into. */
const FOLDERS = ['images', 'thumbs'];
const APPENDED = ['manifest.jsonl', 'run.log'];

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // ENOTDIR (a file on the way), EACCES, EIO: the folder cannot be used, and says why (exit 3).
    throw new EnvironmentError(`cannot use ${p}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Checks a batch folder before a command works in it: the folders from `--out` down to it, its
 * `images` and `thumbs` folders and its appended files (`manifest.jsonl`, `run.log`) must not be
 * links or anything else planted there. Files that are always replaced by rename (images,
 * sidecars, `index.html`) need no check: a planted link is replaced, never written through.
 * Throws EnvironmentError (exit 3) naming the entry, or UsageError (exit 2) for a missing batch.
 */
export async function checkBatchFolder(check: BatchFolderCheck): Promise<void> {
  const { out, dir } = check;
  for (const p of chain(out, dir)) {
    const st = await lstatOrNull(p);
    if (st === null) {
      if (check.mustExist) {
        throw new UsageError(`no batch folder ${dir}: check --batch and --out (the batch has no images yet?)`);
      }
      return;
    }
    const problem = folderProblem(st);
    if (problem !== null) throw new EnvironmentError(`refusing to use ${p}: it ${problem}`);
  }
  for (const name of FOLDERS) {
    const st = await lstatOrNull(path.join(dir, name));
    const problem = st === null ? null : folderProblem(st);
    if (problem !== null) throw new EnvironmentError(`refusing to use ${path.join(dir, name)}: it ${problem}`);
  }
  for (const name of APPENDED) {
    const st = await lstatOrNull(path.join(dir, name));
    if (st === null) continue;
    const problem = st.isSymbolicLink() ? `is a symbolic link (${LINK_HINT})` : appendProblem(st);
    if (problem !== null) throw new EnvironmentError(`refusing to use ${path.join(dir, name)}: it ${problem}`);
  }
}
