import type { Redis } from 'ioredis';

/**
 * Records that a job's request is on its way to the API, kept alive while it is pending.
 * A worker that receives a job whose request is still live elsewhere (its lock was lost,
 * the holder is not dead) must not send it again: that would pay twice.
 */
export interface Inflight {
  /** `claimed` when this owner may send; `held` when another live owner is sending. */
  claim(jobId: string, owner: string): Promise<'claimed' | 'held'>;
  renew(jobId: string, owner: string): Promise<void>;
  release(jobId: string, owner: string): Promise<void>;
  /** Milliseconds until another owner's claim lapses (0 when none). */
  remainingMs(jobId: string): Promise<number>;
}

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export function createInflight(opts: { redis: Redis; prefix: string; queue: string; ttlMs: number }): Inflight {
  const { redis, ttlMs } = opts;
  const key = (jobId: string) => `${opts.prefix}:ns:${opts.queue}:inflight:${jobId}`;
  return {
    async claim(jobId, owner) {
      const ok = await redis.set(key(jobId), owner, 'PX', ttlMs, 'NX');
      if (ok === 'OK') return 'claimed';
      return (await redis.get(key(jobId))) === owner ? 'claimed' : 'held';
    },
    async renew(jobId, owner) {
      await redis.eval(RENEW, 1, key(jobId), owner, String(ttlMs));
    },
    async release(jobId, owner) {
      await redis.eval(RELEASE, 1, key(jobId), owner);
    },
    async remainingMs(jobId) {
      return Math.max(0, await redis.pttl(key(jobId)));
    },
  };
}
