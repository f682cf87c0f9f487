import type { Redis } from 'ioredis';

export interface HeartbeatOptions {
  redis: Redis;
  /** The hash of the queue's registered workers. */
  key: string;
  workerId: string;
  /** What the worker tells `status` about itself (its concurrency, its key's id, …). */
  describe: () => Record<string, unknown>;
  now: () => number;
  everyMs?: number;
}

/**
 * Registers the worker and refreshes its entry, so `status` can tell whether concurrency or the
 * rate limit bounds throughput; an entry whose heartbeat is old belongs to a dead worker.
 * Resolves once registered; the returned function removes the entry.
 */
export async function startHeartbeat(o: HeartbeatOptions): Promise<() => Promise<void>> {
  const beat = () =>
    o.redis.hset(o.key, o.workerId, JSON.stringify({ ...o.describe(), heartbeat: o.now() })).catch(() => 0);
  await beat();
  const timer = setInterval(() => void beat(), o.everyMs ?? 10_000);
  return async () => {
    clearInterval(timer);
    await o.redis.hdel(o.key, o.workerId).catch(() => 0);
  };
}
