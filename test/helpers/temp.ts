import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';

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

/** A fresh temp dir for each test of the file, removed after it; the function gives the current one. */
export function useTempDir(prefix?: string): () => string {
  let current: TempDir | undefined;
  beforeEach(async () => {
    current = await tempDir(prefix);
  });
  afterEach(async () => {
    await current?.cleanup();
    current = undefined;
  });
  return () => {
    if (!current) throw new Error('the temp dir exists only while a test runs');
    return current.dir;
  };
}
