import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach } from 'vitest';
import type { MockApi } from '../../src/mock-api/server.js';
import { cleanupPrefix, newRedis, randomPrefix } from './redis.js';
import { tempDir, type TempDir } from './temp.js';

/** What a test running real processes needs: its own Redis prefix and folder, and a fake API if it starts one. */
export interface ProcessFixture {
  readonly redis: Redis;
  readonly prefix: string;
  readonly tmp: TempDir;
  /** Set by the test that starts a fake; closed after the test. */
  mock: MockApi | undefined;
}

/** A fresh prefix and temp folder for each test of the describe block, and everything removed after it. */
export function useProcessFixture(): ProcessFixture {
  const redis = newRedis();
  let prefix: string | undefined;
  let tmp: TempDir | undefined;
  const fx: ProcessFixture = {
    redis,
    get prefix() {
      if (prefix === undefined) throw new Error('the prefix exists only while a test runs');
      return prefix;
    },
    get tmp() {
      if (tmp === undefined) throw new Error('the temp folder exists only while a test runs');
      return tmp;
    },
    mock: undefined,
  };
  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
  });
  afterEach(async () => {
    await fx.mock?.close();
    fx.mock = undefined;
    if (prefix !== undefined) await cleanupPrefix(redis, prefix);
    await tmp?.cleanup();
    prefix = undefined;
    tmp = undefined;
  });
  afterAll(() => redis.disconnect());
  return fx;
}
