import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../../errors.js';
import { readRegularFile } from '../../regular-file.js';
import { isTempName, toStorageError, writeFilesAtomic } from '../atomic.js';
import { checkRealDirs } from '../safe-dirs.js';
import { resolveInBatch } from '../paths.js';
import { mapLimit } from '../sidecar.js';
import type { BatchStore, StoredObject } from './types.js';

/**
 * A batch folder on disk: temp file, fsync and rename for every write (image renamed before its
 * sidecar), nothing read or written through a link planted in the folder or on the way to it:
 * every folder below `root` (`--out`; by default the batch folder itself) must be a real one.
 */
export function folderStore(batchDir: string, opts: { root?: string } = {}): BatchStore {
  const root = opts.root ?? batchDir;
  // A link on the way to what is read (the batch folder, images/, a folder above them): refused as a
  // StorageError, so a read through it never tells a worker an image is (or is not) there.
  const real = (dir: string) =>
    checkRealDirs(root, dir).catch((err: unknown) => {
      throw toStorageError(err, `cannot read in ${batchDir}`);
    });
  const fileOf = (key: string) => resolveInBatch(batchDir, key);
  return {
    kind: 'folder',
    where: batchDir,
    async put(objects, o = {}) {
      const files = objects.map((f) => ({ target: resolveInBatch(batchDir, f.key), data: f.data }));
      // Rebuildable files skip the fsync.
      await writeFilesAtomic(files, o.durable === false ? { fsync: false, root } : { root });
    },
    async head(key) {
      let file: string;
      try {
        file = fileOf(key);
      } catch {
        return null; // a key that would leave the batch folder names nothing in it
      }
      await real(path.dirname(file));
      return headFile(file, key);
    },
    async get(key, maxBytes) {
      const file = fileOf(key);
      await real(path.dirname(file));
      const read = await readRegularFile(file, { maxBytes, noFollow: true });
      if (read.ok) return read.bytes;
      // ENOTDIR: something on the way is not a folder, so nothing can be there either.
      if (read.code === 'ENOENT' || read.code === 'ENOTDIR') return null;
      // There but not trusted (a planted link, a FIFO, too large): the caller judges it. Anything
      // else (no permission, too many open files, an I/O error) means the folder cannot tell.
      if (!UNTRUSTED.has(read.code)) throw new StorageError(`cannot read ${key}: ${read.message}`, read.code);
      throw Object.assign(new Error(`${key}: ${read.message}`), { code: read.code });
    },
    async list(prefix) {
      const dir = prefix.replace(/\/+$/, '');
      const folder = dir === '' ? batchDir : fileOf(dir);
      await real(folder);
      let names: string[];
      try {
        names = await readdir(folder);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw toStorageError(err, `cannot list ${folder}`);
      }
      const found = await mapLimit(
        names.filter((n) => !isTempName(n)),
        32,
        (n) => headFile(path.join(folder, n), dir === '' ? n : `${dir}/${n}`),
      );
      return found.filter((f): f is StoredObject => f !== null);
    },
  };
}

/** Refusals of something that is there but is not a file nightshift may read. */
const UNTRUSTED = new Set(['ELOOP', 'EISDIR', 'NOT_REGULAR', 'TOO_LARGE', 'ENXIO', 'HARD_LINKED']);

/**
 * lstat, not stat: a link planted under a file's name is not ours, whatever it points to. Only "not
 * there" is null: a folder that cannot answer (EIO, a stale network mount, no permission) throws,
 * because "cannot tell" must never read as "no image", which would pay for it again.
 */
async function headFile(file: string, key: string): Promise<StoredObject | null> {
  try {
    const st = await lstat(file);
    return st.isFile() ? { key, size: st.size, modifiedMs: st.mtimeMs } : null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw toStorageError(err, `cannot look at ${key}`);
  }
}
