import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

/** The many-host suite: needs root and network namespaces, so it runs apart from `npm test`. */
export default defineConfig({
  root: resolve(import.meta.dirname, '../..'),
  test: {
    include: ['test/hosts/**/*.test.ts'],
    globalSetup: ['test/hosts/global-setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The batches measure time: one file at a time.
    fileParallelism: false,
  },
});
