import path from 'node:path';
import { UsageError } from '../errors.js';
import type { BatchRef } from '../redis/keys.js';
import { MOCK_API_IDENTITY } from '../config.js';

/**
 * Where things go: a real batch in `<out>/<batch>/`, a mock batch in `<out>/mock/<batch>/` (a mock
 * batch shares nothing with a real one of the same name). Every path derived from user input
 * (prompt, batch name, a `file` read back from a manifest) passes through here, so no
 * prompt or batch name can make nightshift write outside the batch folder.
 */

/** Letters NFKD does not decompose into ASCII but that have an obvious ASCII spelling. */
const TRANSLITERATE: Record<string, string> = {
  ß: 'ss',
  æ: 'ae',
  œ: 'oe',
  ø: 'o',
  đ: 'd',
  ð: 'd',
  ł: 'l',
  þ: 'th',
  ı: 'i',
  ĸ: 'k',
  ŋ: 'n',
};

/**
 * A short, lower-case, ASCII rendering of a prompt for file names: `a-cat-on-a-roof`.
 * Only [a-z0-9-] survive, so the result can never contain a separator, `..`, a drive
 * letter or a character some filesystem refuses. Never empty.
 */
export function slugify(prompt: string, maxLen = 40): string {
  const limit = Math.max(1, Math.floor(maxLen));
  const ascii = prompt
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[\u0300-\u036f]/g, '') // combining marks left by NFKD: é → e
    .replace(/[ßæœøđðłþıĸŋ]/g, (c) => TRANSLITERATE[c] ?? '');
  const words = ascii.split(/[^a-z0-9]+/).filter((w) => w.length > 0);
  let slug = '';
  for (const w of words) {
    const next = slug === '' ? w : `${slug}-${w}`;
    if (next.length <= limit) {
      slug = next;
      continue;
    }
    // A first word longer than the limit is cut rather than dropped; later words end the slug.
    if (slug === '') slug = w.slice(0, limit);
    break;
  }
  slug = slug.replace(/^-+|-+$/g, '');
  return slug === '' ? 'prompt'.slice(0, limit) : slug;
}

/** `images/<index:05>-<slug>-<id8>.<ext>`, relative to the batch folder, forward slashes. */
export function imageFileName(index: number, prompt: string, id8: string, ext: string): string {
  if (!Number.isSafeInteger(index) || index < 0) throw new Error(`invalid image index: ${index}`);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id8)) throw new Error(`invalid id for a file name: ${JSON.stringify(id8)}`);
  if (!/^[A-Za-z0-9]{1,10}$/.test(ext)) throw new Error(`invalid file extension: ${JSON.stringify(ext)}`);
  return `images/${String(index).padStart(5, '0')}-${slugify(prompt)}-${id8}.${ext.toLowerCase()}`;
}

/** The sidecar of an image: the same relative path with `.json` instead of the extension. */
export function sidecarPathFor(relImage: string): string {
  const ext = path.posix.extname(relImage);
  const base = ext === '' ? relImage : relImage.slice(0, -ext.length);
  return `${base}.json`;
}

/** The folder under the output folder that holds every mock batch. */
export const MOCK_DIR = 'mock';

/** A real batch named like the mock folder would live inside it. */
export function checkBatchName(ref: BatchRef): void {
  if (ref.api !== MOCK_API_IDENTITY && ref.batch === MOCK_DIR) {
    throw new UsageError(`--batch: "${MOCK_DIR}" is the folder of the mock batches; give a real batch another name`);
  }
}

/** `<out>/<batch>` (or `<out>/mock/<batch>` for the mock API), absolute; throws when the batch name could name anything else. */
export function batchDir(out: string, ref: BatchRef): string {
  const { batch } = ref;
  if (
    batch === '' ||
    batch === '.' ||
    batch === '..' ||
    batch.length > 255 ||
    // eslint-disable-next-line no-control-regex -- control characters are exactly what it refuses
    /[\u0000-\u001f/\\:]/.test(batch) || // separators, NUL and control characters; ':' for Windows drives/streams
    path.isAbsolute(batch)
  ) {
    throw new Error(`invalid batch name: ${JSON.stringify(batch)}`);
  }
  checkBatchName(ref);
  const root = ref.api === MOCK_API_IDENTITY ? path.resolve(out, MOCK_DIR) : path.resolve(out);
  const dir = path.resolve(root, batch);
  if (path.dirname(dir) !== root) throw new Error(`invalid batch name: ${JSON.stringify(batch)}`);
  return dir;
}

/** A batch's folder relative to the output (`night` or `mock/night`), its name checked as `batchDir` checks it. */
export function batchFolderName(ref: BatchRef): string {
  const root = path.resolve('/');
  return path.relative(root, batchDir(root, ref)).split(path.sep).join('/');
}

/**
 * The absolute path of `rel` inside the batch folder. Refuses absolute paths, backslashes
 * (a separator on Windows, so a manifest written there could smuggle `..\`), NUL, and
 * anything that resolves outside the folder or to the folder itself.
 */
export function resolveInBatch(batchDirPath: string, rel: string): string {
  if (rel === '' || rel.includes('\0') || rel.includes('\\') || path.isAbsolute(rel) || path.win32.isAbsolute(rel)) {
    throw new Error(`path escapes the batch folder: ${JSON.stringify(rel)}`);
  }
  const root = path.resolve(batchDirPath);
  const abs = path.resolve(root, rel);
  const back = path.relative(root, abs);
  if (back === '' || back === '..' || back.startsWith(`..${path.sep}`) || path.isAbsolute(back)) {
    throw new Error(`path escapes the batch folder: ${JSON.stringify(rel)}`);
  }
  return abs;
}

export const MANIFEST_FILE = 'manifest.jsonl';
export const GALLERY_FILE = 'index.html';
export const IMAGES_DIR = 'images';
