import type { WorkerRegistry } from '../src/queue/worker-registry.js';

export interface HeartbeatOptions {
  /** The queue's registered workers. */
  registry: Pick<WorkerRegistry, 'register' | 'unregister'>;
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
  const beat = () => o.registry.register(o.workerId, { ...o.describe(), heartbeat: o.now() }).catch(() => {});
  await beat();
  const timer = setInterval(() => void beat(), o.everyMs ?? 10_000);
  return async () => {
    clearInterval(timer);
    await o.registry.unregister(o.workerId).catch(() => {});
  };
}
