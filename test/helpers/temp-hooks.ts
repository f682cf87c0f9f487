import { afterEach, beforeEach } from 'vitest';
import { tempDir, type TempDir } from './temp.js';

// Apart from temp.ts so the benchmarks, which run outside vitest, never load the test runner.
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
