import type { Redis } from 'ioredis';

/**
 * Keeps the bytes of a paid image in Redis while the disk refuses them, so the
 * next attempt writes them instead of paying the API again.
 */
export interface StashedImage {
  bytes: Buffer;
  mime: string;
  seed: number;
  finishReason: 'SUCCESS' | 'CONTENT_FILTERED';
}

export interface Stash {
  put(jobId: string, img: StashedImage): Promise<void>;
  get(jobId: string): Promise<StashedImage | null>;
  del(jobId: string): Promise<void>;
}

const WEEK_S = 7 * 24 * 3600;

export function createStash(opts: { redis: Redis; prefix: string; queue: string }): Stash {
  const { redis } = opts;
  const key = (jobId: string) => `${opts.prefix}:ns:${opts.queue}:stash:${jobId}`;
  return {
    async put(jobId, img) {
      await redis
        .multi()
        .hset(key(jobId), { bytes: img.bytes, mime: img.mime, seed: String(img.seed), finishReason: img.finishReason })
        .expire(key(jobId), WEEK_S)
        .exec();
    },
    async get(jobId) {
      const [bytes, mime, seed, finishReason] = await Promise.all([
        redis.hgetBuffer(key(jobId), 'bytes'),
        redis.hget(key(jobId), 'mime'),
        redis.hget(key(jobId), 'seed'),
        redis.hget(key(jobId), 'finishReason'),
      ]);
      if (!bytes || !mime || !seed) return null;
      return { bytes, mime, seed: Number(seed), finishReason: finishReason === 'CONTENT_FILTERED' ? 'CONTENT_FILTERED' : 'SUCCESS' };
    },
    async del(jobId) {
      await redis.del(key(jobId));
    },
  };
}
