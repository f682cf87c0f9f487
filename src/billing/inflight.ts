import type { Redis } from 'ioredis';
import { loadScript, type LuaScript } from '../redis/scripts.js';
import { jobKeys } from '../redis/keys.js';

/**
 * Records that a job's request is on its way to the API, kept alive while it is pending.
 * A worker that receives a job whose request is still live elsewhere (its lock was lost,
 * the holder is not dead, or another queue holds the same job) must not send it again:
 * that would pay twice. Claims are keyed by (API, batch, job id), never by queue.
 *
 * A second, lasting marker says "a request left and its outcome is not known yet". A claim that
 * finds it with no live holder learns that the previous sender died mid-request: that request
 * may have been billed, and is counted so (it cannot be known).
 */
export interface Inflight {
  /**
   * Keeps this owner's claim alive while its request is pending. The claim is taken by the job's
   * begin step and dropped, with its sent marker, by the step that books the request (job-steps).
   */
  renew(job: JobRef, owner: string): Promise<void>;
}

/** A job of a batch of this API. */
export interface JobRef {
  batch: string;
  id: string;
}

/** KEYS: claim. ARGV: owner, ttl (ms). Result: 1 renewed, 0 not this owner's claim. */
const RENEW: LuaScript = {
  name: 'nsInflightRenew',
  numberOfKeys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`,
};

export function createInflight(opts: { redis: Redis; prefix: string; api: string; ttlMs: number }): Inflight {
  const { redis, ttlMs } = opts;
  const keys = (job: JobRef) => jobKeys(opts.prefix, { api: opts.api, batch: job.batch }, job.id);
  const renewScript = loadScript(redis, RENEW);
  return {
    async renew(job, owner) {
      await renewScript(keys(job).inflight, owner, ttlMs);
    },
  };
}
