/** Redis for tests: the real server (REDIS_URL or 127.0.0.1:6379), one random key prefix per test. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, beforeEach } from 'vitest';

export function redisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

export function newRedis(): Redis {
  return new Redis(redisUrl());
}

/** A prefix with its own hash tag, like the product's `{nightshift}`, so tests never share keys. */
export function randomPrefix(): string {
  return `{nstest-${randomBytes(6).toString('hex')}}`;
}

/** Deletes every key starting with `prefix`; returns how many were deleted. */
export async function cleanupPrefix(redis: Redis, prefix: string): Promise<number> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

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
    get a() { return get().a; },
    get b() { return get().b; },
    get prefix() { return get().prefix; },
  };
}
