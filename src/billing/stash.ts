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
      // One round trip: this runs before every request, and almost always finds nothing.
      const h = await redis.hgetallBuffer(key(jobId));
      const { bytes, mime, seed, finishReason } = h;
      if (!bytes || !mime || !seed) return null;
      return {
        bytes,
        mime: mime.toString(),
        seed: Number(seed.toString()),
        finishReason: finishReason?.toString() === 'CONTENT_FILTERED' ? 'CONTENT_FILTERED' : 'SUCCESS',
      };
    },
    async del(jobId) {
      await redis.del(key(jobId));
    },
  };
}
