import type { Redis } from 'ioredis';

/**
 * Records that a job's request is on its way to the API, kept alive while it is pending.
 * A worker that receives a job whose request is still live elsewhere (its lock was lost,
 * the holder is not dead) must not send it again: that would pay twice.
 *
 * A second, lasting marker says "a request left and its outcome is not known yet". A claim that
 * finds it with no live holder learns that the previous sender died mid-request: that request
 * may have been billed, and is counted so (it cannot be known).
 */
export interface Inflight {
  /**
   * `claimed` when this owner may send; `orphan` when it may send but a previous sender died with
   * its request out (possibly billed); `held` when another live owner is sending.
   */
  claim(jobId: string, owner: string): Promise<'claimed' | 'orphan' | 'held'>;
  renew(jobId: string, owner: string): Promise<void>;
  /** Right before the request leaves. */
  markSent(jobId: string): Promise<void>;
  /** Once the outcome is known (or nothing was sent): drops the claim and the sent marker. */
  release(jobId: string, owner: string): Promise<void>;
  /** Milliseconds until another owner's claim lapses (0 when none). */
  remainingMs(jobId: string): Promise<number>;
}

// KEYS: claim, sent marker. ARGV: owner, ttl -> 1 claimed, 2 claimed after a dead sender, 0 held
const CLAIM = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  if redis.call('DEL', KEYS[2]) == 1 then return 2 end
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0`;
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0`;

const SENT_TTL_S = 7 * 24 * 3600;

export function createInflight(opts: { redis: Redis; prefix: string; queue: string; ttlMs: number }): Inflight {
  const { redis, ttlMs } = opts;
  const key = (jobId: string) => `${opts.prefix}:ns:${opts.queue}:inflight:${jobId}`;
  const sentKey = (jobId: string) => `${opts.prefix}:ns:${opts.queue}:sent:${jobId}`;
  return {
    async claim(jobId, owner) {
      const r = Number(await redis.eval(CLAIM, 2, key(jobId), sentKey(jobId), owner, String(ttlMs)));
      return r === 2 ? 'orphan' : r === 1 ? 'claimed' : 'held';
    },
    async renew(jobId, owner) {
      await redis.eval(RENEW, 1, key(jobId), owner, String(ttlMs));
    },
    async markSent(jobId) {
      await redis.set(sentKey(jobId), '1', 'EX', SENT_TTL_S);
    },
    async release(jobId, owner) {
      await redis.eval(RELEASE, 2, key(jobId), sentKey(jobId), owner);
    },
    async remainingMs(jobId) {
      return Math.max(0, await redis.pttl(key(jobId)));
    },
  };
}
