import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Needs root and network namespaces: `npm run test:hosts`.
    exclude: [...configDefaults.exclude, 'test/hosts/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: a third parallel file made the suite no faster, only the timing-sensitive process tests noisier.
    maxWorkers: 2,
  },
});
