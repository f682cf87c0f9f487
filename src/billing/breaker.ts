/**
 * The circuit breaker (SPEC §6): many consecutive `transient` failures across all workers open it
 * (the caller pauses the queue), one worker per interval probes the API, and a good answer closes it.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { script } from '../redis/scripts.js';

export interface CircuitBreaker {
  /** Counts a transient failure; `tripped` is true only for the call that reached the threshold. */
  recordFailure(): Promise<{ tripped: boolean }>;
  /** Any answer from the API breaks the run of failures. Does not close an open breaker. */
  recordSuccess(): Promise<void>;
  isOpen(): Promise<boolean>;
  open(): Promise<void>;
  /** Closes the breaker and starts counting failures from zero. */
  close(): Promise<void>;
  /** True for one caller per `intervalMs` across all workers: that one sends the probe. */
  claimProbe(intervalMs: number): Promise<boolean>;
}

/** A run of failures this old with no new failure is no longer "consecutive" with new ones. */
const FAILURES_TTL_MS = 60 * 60 * 1000;

// KEYS: failures, open. ARGV: threshold, ttl -> 1 when this call opened the breaker
const FAILURE_LUA = `
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if n == tonumber(ARGV[1]) and redis.call('SET', KEYS[2], '1', 'NX') then
  return 1
end
return 0
`;

export function createCircuitBreaker(opts: { redis: Redis; prefix: string; threshold?: number }): CircuitBreaker {
  const { redis, prefix } = opts;
  const threshold = opts.threshold ?? 20;
  if (!Number.isInteger(threshold) || threshold < 1)
    throw new RangeError(`threshold must be a positive integer, got ${threshold}`);
  const base = `${prefix}:ns:breaker`;
  const failuresKey = `${base}:failures`;
  const openKey = `${base}:open`;
  const probeKey = `${base}:probe`;
  const failureScript = script(redis, 'nsBreakerFailure', 2, FAILURE_LUA);
  // Names the probe holder, for anyone inspecting Redis.
  const token = randomBytes(6).toString('hex');

  return {
    async recordFailure() {
      return { tripped: Number(await failureScript(failuresKey, openKey, threshold, FAILURES_TTL_MS)) === 1 };
    },
    async recordSuccess() {
      await redis.del(failuresKey);
    },
    async isOpen() {
      return (await redis.exists(openKey)) === 1;
    },
    async open() {
      await redis.set(openKey, '1');
    },
    async close() {
      // One DEL for both keys: they share the prefix's hash slot.
      await redis.del(openKey, failuresKey);
    },
    async claimProbe(intervalMs) {
      const ms = Math.max(1, Math.ceil(intervalMs));
      return (await redis.set(probeKey, token, 'PX', ms, 'NX')) === 'OK';
    },
  };
}
