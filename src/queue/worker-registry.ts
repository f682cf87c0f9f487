import type { Redis } from 'ioredis';
import { queueKeys } from '../redis/keys.js';

/**
 * The workers taking a queue's jobs, as they describe themselves: `status` tells from them whether
 * concurrency or the rate limit bounds throughput, and `status`/`resume` find the lockout and the
 * circuit breaker of the key the workers use by its id, without knowing the key.
 */
export interface WorkerEntry {
  id: string;
  /** Requests this worker may have in flight now. */
  concurrency: number;
  /** The API it calls: `mock` or the host. */
  api: string | null;
  /** `apiKeyId` of its key. */
  key_id: string | null;
  /** When it last said it is alive (epoch ms); null for an entry without one. */
  heartbeat: number | null;
  /** Anything else it said (its run window, …). */
  [more: string]: unknown;
}

/** An entry whose heartbeat is this old belongs to a worker that died without cleaning up. */
export const WORKER_STALE_MS = 60_000;

export function createWorkerRegistry(opts: { redis: Redis; prefix: string; queue: string }) {
  const key = queueKeys(opts.prefix, opts.queue).workers;
  return {
    /** Writes (or refreshes) this worker's entry. */
    async register(id: string, about: Record<string, unknown>): Promise<void> {
      await opts.redis.hset(key, id, JSON.stringify(about));
    },
    async unregister(id: string): Promise<void> {
      await opts.redis.hdel(key, id);
    },
    /** Every entry, newest heartbeat first; with `now`, those gone stale are left out. */
    async list(now?: number): Promise<WorkerEntry[]> {
      const h = await opts.redis.hgetall(key);
      const out: WorkerEntry[] = [];
      for (const [id, raw] of Object.entries(h)) {
        const e = parseEntry(id, raw);
        if (!e) continue;
        if (now !== undefined && e.heartbeat !== null && now - e.heartbeat > WORKER_STALE_MS) continue;
        out.push(e);
      }
      return out.sort((a, b) => (b.heartbeat ?? 0) - (a.heartbeat ?? 0));
    },
  };
}

export type WorkerRegistry = ReturnType<typeof createWorkerRegistry>;

/** An entry is JSON (older workers wrote their concurrency as a bare number). */
function parseEntry(id: string, raw: string): WorkerEntry | null {
  let v: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(raw);
    v = typeof parsed === 'number' ? { concurrency: parsed } : (parsed as Record<string, unknown>);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const concurrency = Number(v.concurrency);
  if (!(concurrency > 0)) return null;
  const str = (x: unknown) => (typeof x === 'string' ? x : null);
  return {
    ...v,
    id,
    concurrency,
    api: str(v.api),
    key_id: str(v.key_id),
    heartbeat: typeof v.heartbeat === 'number' ? v.heartbeat : null,
  };
}
