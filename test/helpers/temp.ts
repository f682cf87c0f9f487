import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  dir: string;
  /** Removes the directory and everything in it; safe to call twice. */
  cleanup: () => Promise<void>;
}

/** A fresh directory under `parent` (the system's temp dir unless said), named `<prefix>XXXXXX`. */
export async function tempDir(prefix = 'nightshift-test-', parent = tmpdir()): Promise<TempDir> {
  const dir = await mkdtemp(join(parent, prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Whether something is at `path` (a test's question, never the product's: the product lstat's). */
export const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );
