/** Redis for tests: the real server (REDIS_URL or 127.0.0.1:6379), one random key prefix per test. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

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
