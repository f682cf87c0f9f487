import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { queueKeys } from '../redis/keys.js';

/**
 * Why a queue is paused: `auth`/`payment` (the API refused the key or the credits ran out), `engine`
 * (a v1 engine the API no longer serves), `storage` (a full disk), `circuit` (the API keeps failing),
 * `manual` (`nightshift pause`).
 */
export type PauseReason = 'auth' | 'payment' | 'engine' | 'storage' | 'circuit' | 'manual';
/** Pauses a person must fix (the key, the credits, the batch's engine): a worker stops with exit 4. */
export const STOP_REASONS = ['auth', 'payment', 'engine'] as const satisfies readonly PauseReason[];
export type StopReason = (typeof STOP_REASONS)[number];

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
  const key = queueKeys(opts.prefix, opts.queueName).pausedBy;
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
