import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';

/**
 * Opening files that other people and programs put there (prompt files, PNGs, manifests, sidecars)
 * without ever blocking or reading without bound. The open itself is non-blocking, so a FIFO or a
 * device opens at once and is refused after `fstat` on the descriptor (a `stat` before the open would
 * leave a window for a swap); the size is checked before reading, and the read stops at the limit
 * even when the file grows meanwhile.
 */

export type OpenRefusal = {
  ok: false;
  /** What is wrong, to follow the file's name: `is a FIFO (named pipe), not a regular file`. */
  message: string;
  /** The errno code, or NOT_REGULAR / TOO_LARGE / HARD_LINKED. */
  code: string;
};

export type Opened = { ok: true; fh: FileHandle; size: number };

export interface OpenOptions {
  /** Largest size accepted, in bytes. */
  maxBytes: number;
  /** Refuse a symbolic link instead of following it (files inside a batch folder). */
  noFollow?: boolean;
}

export function sizeText(bytes: number): string {
  return bytes < 1024 * 1024 ? `${bytes} bytes` : `${Math.round((bytes / 1024 / 1024) * 10) / 10} MiB`;
}

export function tooLargeMessage(size: number, maxBytes: number): string {
  return `file is too large (${sizeText(size)}; the limit is ${sizeText(maxBytes)})`;
}

/** Why a file that is not a regular file is refused, in words. */
export function kindOf(st: Stats): string | null {
  if (st.isFile()) return null;
  if (st.isDirectory()) return 'is a directory, not a file';
  if (st.isFIFO()) return 'is a FIFO (named pipe), not a regular file';
  if (st.isCharacterDevice()) return 'is a character device, not a regular file';
  if (st.isBlockDevice()) return 'is a block device, not a regular file';
  if (st.isSocket()) return 'is a socket, not a regular file';
  return 'is not a regular file';
}

export function openErrorMessage(err: unknown, noFollow = false): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EISDIR') return 'is a directory, not a file';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
  if (code === 'ELOOP' && noFollow) return 'is a symbolic link; nightshift does not follow links it did not create';
  if (code === 'ELOOP') return 'is a symbolic link that loops or goes too deep';
  if (code === 'ENXIO') return 'is a socket or a device with nothing behind it, not a regular file';
  return `cannot be read (${code ?? (err instanceof Error ? err.message : String(err))})`;
}

/** Opens a regular file for reading, or says why not; never blocks on a FIFO or device. */
export async function openRegularFile(file: string, opts: OpenOptions): Promise<Opened | OpenRefusal> {
  const flags =
    constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY | (opts.noFollow ? constants.O_NOFOLLOW : 0);
  let fh: FileHandle;
  try {
    fh = await open(file, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    return { ok: false, message: openErrorMessage(err, opts.noFollow), code };
  }
  try {
    const st = await fh.stat();
    const kind = kindOf(st);
    if (kind !== null) return refuse(fh, kind, st.isDirectory() ? 'EISDIR' : 'NOT_REGULAR');
    if (st.size > opts.maxBytes) return refuse(fh, tooLargeMessage(st.size, opts.maxBytes), 'TOO_LARGE');
    return { ok: true, fh, size: st.size };
  } catch (err) {
    await fh.close().catch(() => {});
    return { ok: false, message: openErrorMessage(err), code: (err as NodeJS.ErrnoException).code ?? 'EIO' };
  }
}

async function refuse(fh: FileHandle, message: string, code: string): Promise<OpenRefusal> {
  await fh.close().catch(() => {});
  return { ok: false, message, code };
}

/** Thrown by the readers below when a file grew past its limit while being read. */
export class FileGrewError extends Error {
  override name = 'FileGrewError';
  constructor(readonly bytes: number) {
    super(`file grew past its limit while being read (${sizeText(bytes)} so far)`);
  }
}

const CHUNK = 1024 * 1024;

/** Reads the file in chunks of at most `chunkBytes`, never more than `maxBytes` in all (FileGrewError past it). */
export async function* readChunks(fh: FileHandle, maxBytes: number, chunkBytes = CHUNK): AsyncGenerator<Buffer> {
  let total = 0;
  for (;;) {
    // One byte more than the limit allows tells a file that grew from one that is exactly at it.
    const want = Math.min(chunkBytes, maxBytes - total + 1);
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, null);
    if (bytesRead === 0) return;
    total += bytesRead;
    if (total > maxBytes) throw new FileGrewError(total);
    yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
  }
}

/** The whole file, at most `maxBytes` (FileGrewError past it). */
export async function readAllBounded(fh: FileHandle, maxBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of readChunks(fh, maxBytes)) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Opens, reads whole and closes a regular file; a refusal or a file that grew comes back as a message. */
export async function readRegularFile(
  file: string,
  opts: OpenOptions,
): Promise<{ ok: true; bytes: Buffer } | OpenRefusal> {
  const opened = await openRegularFile(file, opts);
  if (!opened.ok) return opened;
  try {
    return { ok: true, bytes: await readAllBounded(opened.fh, opts.maxBytes) };
  } catch (err) {
    if (err instanceof FileGrewError)
      return { ok: false, message: tooLargeMessage(err.bytes, opts.maxBytes), code: 'TOO_LARGE' };
    return { ok: false, message: openErrorMessage(err), code: (err as NodeJS.ErrnoException).code ?? 'EIO' };
  } finally {
    await opened.fh.close().catch(() => {});
  }
}
