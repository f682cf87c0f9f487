import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { nsKey } from './queue.js';

export type PauseReason = 'auth' | 'payment' | 'storage' | 'circuit' | 'manual';

export interface PauseRecord {
  reason: PauseReason;
  message: string;
  at: string;
}

/**
 * Pausing is global (every worker on the queue stops taking jobs); the reason is kept
 * beside it so `status`, `--exit-when-idle` and `resume` can tell a person why.
 */
export function createControl(opts: { redis: Redis; queue: Queue; prefix: string; queueName: string }) {
  const key = nsKey(opts.prefix, opts.queueName, 'paused-by');
  return {
    async pause(reason: PauseReason, message: string): Promise<void> {
      await opts.redis.hset(key, { reason, message, at: new Date().toISOString() });
      await opts.queue.pause();
    },
    async resume(): Promise<void> {
      await opts.redis.del(key);
      await opts.queue.resume();
    },
    async pausedBy(): Promise<PauseRecord | null> {
      const h = await opts.redis.hgetall(key);
      if (!h.reason) return null;
      return { reason: h.reason as PauseReason, message: h.message ?? '', at: h.at ?? '' };
    },
    async isPaused(): Promise<boolean> {
      return opts.queue.isPaused();
    },
  };
}

export type Control = ReturnType<typeof createControl>;
