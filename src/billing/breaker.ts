/**
 * The circuit breaker of one (API, key): many consecutive `transient` failures across all workers
 * using them open it (the caller pauses its queue), one worker per interval probes the API, and a
 * good answer closes it. Failures and successes of another API or key never move it.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { loadScript, type LuaScript } from '../redis/scripts.js';
import { breakerKeys } from '../redis/keys.js';

export interface CircuitBreaker {
  /** Counts a transient failure; `tripped` is true only for the call that reached the threshold. */
  recordFailure(): Promise<{ tripped: boolean }>;
  /** Any answer from the API breaks the run of failures. Does not close an open breaker. */
  recordSuccess(): Promise<void>;
  /** Closes the breaker and starts counting failures from zero. */
  close(): Promise<void>;
  /** True for one caller per `intervalMs` across all workers: that one sends the probe. */
  claimProbe(intervalMs: number): Promise<boolean>;
}

export interface CircuitBreakerOptions {
  redis: Redis;
  prefix: string;
  /** The API (`mock` or its host) and the key's id (`apiKeyId`): one breaker per pair. */
  api: string;
  keyId: string;
  /** Consecutive transient failures that open it. Default 20. */
  threshold?: number;
}

/** A run of failures this old with no new failure is no longer "consecutive" with new ones. */
const FAILURES_TTL_MS = 60 * 60 * 1000;

/**
 * KEYS: failures, open. ARGV: threshold, ttl (ms).
 * Result: 1 when this call opened the breaker, else 0.
 */
const FAILURE: LuaScript = {
  name: 'nsBreakerFailure',
  numberOfKeys: 2,
  lua: `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if n == tonumber(ARGV[1]) and redis.call('SET', KEYS[2], '1', 'NX') then
  return 1
end
return 0
`,
};

export function createCircuitBreaker(opts: CircuitBreakerOptions): CircuitBreaker {
  const { redis } = opts;
  const threshold = opts.threshold ?? 20;
  if (!Number.isInteger(threshold) || threshold < 1)
    throw new RangeError(`threshold must be a positive integer, got ${threshold}`);
  const keys = breakerKeys(opts.prefix, opts.api, opts.keyId);
  const failureScript = loadScript(redis, FAILURE);
  // Names the probe holder, for anyone inspecting Redis.
  const token = randomBytes(6).toString('hex');

  return {
    async recordFailure() {
      return { tripped: Number(await failureScript(keys.failures, keys.open, threshold, FAILURES_TTL_MS)) === 1 };
    },
    async recordSuccess() {
      await redis.del(keys.failures);
    },
    async close() {
      // One DEL for both keys: they share the prefix's hash slot.
      await redis.del(keys.open, keys.failures);
    },
    async claimProbe(intervalMs) {
      const ms = Math.max(1, Math.ceil(intervalMs));
      return (await redis.set(keys.probe, token, 'PX', ms, 'NX')) === 'OK';
    },
  };
}
