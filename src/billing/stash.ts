import type { Redis } from 'ioredis';
import { jobKeys } from '../redis/keys.js';
import { FinishReason } from '../stability/types.js';
import type { JobRef } from './inflight.js';

/**
 * Keeps the bytes of a paid image in Redis while they cannot be written (a refusing disk, a record
 * that cannot be built), so the next attempt writes them instead of paying the API again. Keyed by
 * (API, batch, job id): whichever queue's copy of the job runs next finds them.
 */
export interface StashedImage {
  bytes: Buffer;
  mime: string;
  seed: number;
  finishReason: FinishReason;
}

export interface Stash {
  put(job: JobRef, img: StashedImage): Promise<void>;
  get(job: JobRef): Promise<StashedImage | null>;
  /** Whether the job's paid bytes wait here, without fetching them. */
  has(job: JobRef): Promise<boolean>;
  del(job: JobRef): Promise<void>;
}

const WEEK_S = 7 * 24 * 3600;

export function createStash(opts: { redis: Redis; prefix: string; api: string }): Stash {
  const { redis } = opts;
  const key = (job: JobRef) => jobKeys(opts.prefix, { api: opts.api, batch: job.batch }, job.id).stash;
  return {
    async put(job, img) {
      await redis
        .multi()
        .hset(key(job), { bytes: img.bytes, mime: img.mime, seed: String(img.seed), finishReason: img.finishReason })
        .expire(key(job), WEEK_S)
        .exec();
    },
    async get(job) {
      // One round trip: this runs before every request, and almost always finds nothing.
      const h = await redis.hgetallBuffer(key(job));
      const { bytes, mime, seed, finishReason } = h;
      if (!bytes || !mime || !seed) return null;
      return {
        bytes,
        mime: mime.toString(),
        seed: Number(seed.toString()),
        finishReason: FinishReason.catch('SUCCESS').parse(finishReason?.toString()),
      };
    },
    async has(job) {
      return (await redis.exists(key(job))) === 1;
    },
    async del(job) {
      await redis.del(key(job));
    },
  };
}
