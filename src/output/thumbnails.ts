import type { Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { readRegularFile } from '../regular-file.js';
import type { ManifestRecord } from './record.js';
import { writeFileAtomic } from './atomic.js';
import { resolveInBatch } from './paths.js';
import { mapLimit } from './sidecar.js';

/**
 * `<batch>/thumbs/`: one small WebP per image, so a gallery of 10,000 images loads
 * megabytes, not gigabytes. A worker makes each one as its image is written (see
 * thumbnail-queue.ts); `report` makes whatever is missing or stale, and keeps a thumbnail newer
 * than its image, so a report after a run costs a stat per image.
 */

export const THUMBS_DIR = 'thumbs';

export interface ThumbnailOptions {
  /** Longest side in pixels. Default 256. */
  size?: number;
  /** Images decoded at once. Default 4: each decode of a 1024² image holds ~4 MiB, and sharp adds its own threads. */
  concurrency?: number;
}

export interface ThumbnailResult {
  /** Image file (relative to the batch) → its thumbnail (relative to the batch). */
  thumbs: Map<string, string>;
  made: number;
  upToDate: number;
  /** Images that could not be read or decoded: the gallery shows a "no preview" tile for each. */
  failed: Array<{ file: string; message: string }>;
}

/** `images/00001-cat-ab12cd34.png` → `thumbs/00001-cat-ab12cd34.webp`; null for anything else. */
export function thumbPathFor(file: string): string | null {
  const m = /^images\/([A-Za-z0-9._-]+)$/.exec(file);
  if (!m) return null;
  const base = m[1]!.replace(/\.[A-Za-z0-9]+$/, '');
  return `${THUMBS_DIR}/${base}.webp`;
}

/** Larger than any image the API returns; sharp gets the bytes, never a path it would follow. */
export const MAX_IMAGE_BYTES = 256 * 1024 * 1024;

async function lstatOrNull(file: string): Promise<Stats | null> {
  try {
    return await lstat(file);
  } catch {
    return null;
  }
}

type Sharp = (typeof import('sharp'))['default'];

/** The WebP thumbnail of an image's bytes, at most `size` pixels on its longest side. */
export function thumbnailOf(sharp: Sharp, bytes: Buffer, size: number): Promise<Buffer> {
  return sharp(bytes, { failOn: 'error' })
    .resize(size, size, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: 75 })
    .toBuffer();
}

/** sharp (libvips) is loaded only when there is something to make: a worker that makes none never pays for it. */
export async function loadSharp(): Promise<Sharp> {
  return (await import('sharp')).default;
}

/**
 * Makes the thumbnail of one image unless one newer than the image exists: 'made', 'upToDate', or
 * 'gone' when the image is not there. Throws when the image cannot be read or decoded.
 */
export async function makeThumbnail(
  sharp: Sharp,
  batchDir: string,
  file: string,
  size = 256,
): Promise<'made' | 'upToDate' | 'gone'> {
  const rel = thumbPathFor(file);
  if (rel === null) throw new Error('not an image of this batch');
  const src = resolveInBatch(batchDir, file);
  const dst = resolveInBatch(batchDir, rel);
  const [srcSt, dstSt] = await Promise.all([lstatOrNull(src), lstatOrNull(dst)]);
  if (srcSt === null) return 'gone'; // image gone: the gallery shows no picture either way
  if (!srcSt.isFile()) throw new Error(`not read: it is ${srcSt.isSymbolicLink() ? 'a symbolic link' : 'not a file'}`);
  // Anything but a regular file under a thumbnail's name (a planted link) is replaced, never shown.
  if (dstSt !== null && dstSt.isFile() && dstSt.mtimeMs >= srcSt.mtimeMs) return 'upToDate';
  // Read here, not by sharp from the path: a link planted as an image is not followed.
  const read = await readRegularFile(src, { maxBytes: MAX_IMAGE_BYTES, noFollow: true });
  if (!read.ok) throw new Error(`not read: it ${read.message}`);
  const webp = await thumbnailOf(sharp, read.bytes, size);
  // No fsync: a thumbnail is rebuilt from its image; the rename alone keeps readers from half files.
  // Every folder below the batch folder must be a real one (a planted thumbs link is refused).
  await writeFileAtomic(dst, webp, { fsync: false, root: batchDir });
  return 'made';
}

/** Makes the missing or stale thumbnails of the records that have an image. */
export async function makeThumbnails(
  batchDir: string,
  records: readonly ManifestRecord[],
  opts: ThumbnailOptions = {},
): Promise<ThumbnailResult> {
  const size = opts.size ?? 256;
  const result: ThumbnailResult = { thumbs: new Map(), made: 0, upToDate: 0, failed: [] };
  const todo = records.filter((r) => r.file !== null && thumbPathFor(r.file) !== null);
  if (todo.length === 0) return result;
  const sharp = await loadSharp();
  await mapLimit(todo, Math.max(1, opts.concurrency ?? 4), async (r) => {
    const file = r.file!;
    try {
      const made = await makeThumbnail(sharp, batchDir, file, size);
      if (made === 'gone') return;
      if (made === 'made') result.made++;
      else result.upToDate++;
      result.thumbs.set(file, thumbPathFor(file)!);
    } catch (err) {
      result.failed.push({ file, message: err instanceof Error ? err.message : String(err) });
    }
  });
  return result;
}
