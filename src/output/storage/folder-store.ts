import { lstatSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { readRegularFile } from '../../regular-file.js';
import { isTempName, toStorageError, writeFilesAtomic } from '../atomic.js';
import { resolveInBatch } from '../paths.js';
import { mapLimit } from '../sidecar.js';
import type { BatchStore, StoredObject } from './types.js';

/**
 * A batch folder on disk: temp file, fsync and rename for every write (image renamed before its
 * sidecar), nothing read or written through a link planted in the folder.
 */
export function folderStore(batchDir: string): BatchStore {
  return {
    kind: 'folder',
    where: batchDir,
    async put(objects, opts = {}) {
      const files = objects.map((o) => ({ target: resolveInBatch(batchDir, o.key), data: o.data }));
      // Rebuildable files skip the fsync, and every folder below the batch must be a real one.
      await writeFilesAtomic(files, opts.durable === false ? { fsync: false, root: batchDir } : {});
    },
    head: (key) => headFile(batchDir, key),
    async get(key, maxBytes) {
      const file = resolveInBatch(batchDir, key);
      // Nearly every job asks for a sidecar that is not there yet: one synchronous lstat answers that
      // without a trip through the thread pool or an error object. Whatever is there is read as before.
      if (absent(file)) return null;
      const read = await readRegularFile(file, { maxBytes, noFollow: true });
      if (read.ok) return read.bytes;
      if (read.code === 'ENOENT') return null;
      throw Object.assign(new Error(`${key}: ${read.message}`), { code: read.code });
    },
    async list(prefix) {
      const dir = prefix.replace(/\/+$/, '');
      let names: string[];
      try {
        names = await readdir(dir === '' ? batchDir : resolveInBatch(batchDir, dir));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw toStorageError(err, `cannot list ${path.join(batchDir, dir)}`);
      }
      const keys = names.filter((n) => !isTempName(n)).map((n) => (dir === '' ? n : `${dir}/${n}`));
      const found = await mapLimit(keys, 32, (key) => headFile(batchDir, key));
      return found.filter((f): f is StoredObject => f !== null);
    },
  };
}

/** lstat, not stat: a link planted under a file's name is not ours, whatever it points to. */
async function headFile(batchDir: string, key: string): Promise<StoredObject | null> {
  try {
    const st = await lstat(resolveInBatch(batchDir, key));
    return st.isFile() ? { key, size: st.size, modifiedMs: st.mtimeMs } : null;
  } catch {
    return null;
  }
}

/** True only when nothing is there; any other answer (a link, no permission) is left to the read to judge. */
function absent(file: string): boolean {
  try {
    return lstatSync(file, { throwIfNoEntry: false }) === undefined;
  } catch {
    return false;
  }
}
