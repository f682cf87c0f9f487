import type { Redis } from 'ioredis';
import { loadScript, type LuaScript } from '../redis/scripts.js';
import { batchKeys, jobKeys } from '../redis/keys.js';

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
   * `claimed` when this owner may send; `orphan` when it may send but a previous sender died with
   * its request out (possibly billed); `held` when another live owner is sending. With the claim
   * comes what another copy of the job (on another queue) may have done since this one looked:
   * `finished`, a worker recorded saving its image; `stashed`, its paid bytes wait to be written.
   */
  claim(job: JobRef, owner: string): Promise<Claim>;
  renew(job: JobRef, owner: string): Promise<void>;
  /** Right before the request leaves. */
  markSent(job: JobRef): Promise<void>;
  /** Once the outcome is known (or nothing was sent): drops the claim and the sent marker. */
  release(job: JobRef, owner: string): Promise<void>;
  /** Milliseconds until another owner's claim lapses (0 when none). */
  remainingMs(job: JobRef): Promise<number>;
}

export interface Claim {
  outcome: 'claimed' | 'orphan' | 'held';
  finished: boolean;
  stashed: boolean;
}

/** A job of a batch of this API. */
export interface JobRef {
  batch: string;
  id: string;
}

/**
 * KEYS: claim, sent marker, the batch's done hash, the job's stash. ARGV: owner, ttl (ms), job id.
 * Result: {outcome, finished, stashed}: outcome 1 claimed, 2 claimed after a dead sender, 0 held by
 * another owner; finished 1 when the done hash has the job; stashed 1 when its bytes are kept.
 * A sender records the job done (or stashes its bytes) before it releases its claim, so a claim
 * taken after that release always sees it.
 */
const CLAIM: LuaScript = {
  name: 'nsInflightClaim',
  numberOfKeys: 4,
  lua: `
local outcome = 0
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  outcome = 1
  if redis.call('DEL', KEYS[2]) == 1 then outcome = 2 end
elseif redis.call('GET', KEYS[1]) == ARGV[1] then
  outcome = 1
end
return {outcome, redis.call('HEXISTS', KEYS[3], ARGV[3]), redis.call('EXISTS', KEYS[4])}
`,
};

/** KEYS: claim. ARGV: owner, ttl (ms). Result: 1 renewed, 0 not this owner's claim. */
const RENEW: LuaScript = {
  name: 'nsInflightRenew',
  numberOfKeys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`,
};

/** KEYS: claim, sent marker. ARGV: owner. Result: 1 released, 0 not this owner's claim. */
const RELEASE: LuaScript = {
  name: 'nsInflightRelease',
  numberOfKeys: 2,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
`,
};

const SENT_TTL_S = 7 * 24 * 3600;

export function createInflight(opts: { redis: Redis; prefix: string; api: string; ttlMs: number }): Inflight {
  const { redis, ttlMs } = opts;
  const keys = (job: JobRef) => jobKeys(opts.prefix, { api: opts.api, batch: job.batch }, job.id);
  const doneKey = (job: JobRef) => batchKeys(opts.prefix, { api: opts.api, batch: job.batch }).done;
  const claimScript = loadScript(redis, CLAIM);
  const renewScript = loadScript(redis, RENEW);
  const releaseScript = loadScript(redis, RELEASE);
  return {
    async claim(job, owner) {
      const k = keys(job);
      const [r, finished, stashed] = (await claimScript(
        k.inflight,
        k.sent,
        doneKey(job),
        k.stash,
        owner,
        ttlMs,
        job.id,
      )) as number[];
      const outcome = r === 2 ? 'orphan' : r === 1 ? 'claimed' : 'held';
      return { outcome, finished: finished === 1, stashed: stashed === 1 };
    },
    async renew(job, owner) {
      await renewScript(keys(job).inflight, owner, ttlMs);
    },
    async markSent(job) {
      await redis.set(keys(job).sent, '1', 'EX', SENT_TTL_S);
    },
    async release(job, owner) {
      const k = keys(job);
      await releaseScript(k.inflight, k.sent, owner);
    },
    async remainingMs(job) {
      return Math.max(0, await redis.pttl(keys(job).inflight));
    },
  };
}
