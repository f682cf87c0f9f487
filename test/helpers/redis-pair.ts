import type { Redis } from 'ioredis';
import { afterEach, beforeEach } from 'vitest';
import { cleanupPrefix, newRedis, randomPrefix } from './redis.js';

/** Per test: two connections (two "workers") and a fresh prefix, whose keys are deleted after the test. */
export function useRedisPair(): { readonly a: Redis; readonly b: Redis; readonly prefix: string } {
  let cur: { a: Redis; b: Redis; prefix: string } | null = null;
  beforeEach(() => {
    cur = { a: newRedis(), b: newRedis(), prefix: randomPrefix() };
  });
  afterEach(async () => {
    if (!cur) return;
    const { a, b, prefix } = cur;
    cur = null;
    await cleanupPrefix(a, prefix);
    await Promise.all([a.quit(), b.quit()]);
  });
  const get = () => {
    if (!cur) throw new Error('useRedisPair: only inside a test');
    return cur;
  };
  return {
    get a() {
      return get().a;
    },
    get b() {
      return get().b;
    },
    get prefix() {
      return get().prefix;
    },
  };
}
