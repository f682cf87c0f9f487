import { describe, expect, it } from 'vitest';
import { createCircuitBreaker } from '../src/billing/breaker.js';
import { breakerKeys } from '../src/redis/keys.js';
import { useRedisPair } from './helpers/redis-pair.js';

const r = useRedisPair();
const API = 'https://api.stability.ai';
const KEY = 'key-a';
const isOpen = async (api = API, keyId = KEY) => (await r.a.exists(breakerKeys(r.prefix, api, keyId).open)) === 1;

describe('circuit breaker', () => {
  it('trips on the threshold-th consecutive failure, reported once', async () => {
    const breaker = createCircuitBreaker({ redis: r.a, prefix: r.prefix, api: API, keyId: KEY, threshold: 5 });
    for (let i = 0; i < 4; i++) expect(await breaker.recordFailure()).toEqual({ tripped: false });
    expect(await isOpen()).toBe(false);
    expect(await breaker.recordFailure()).toEqual({ tripped: true });
    expect(await isOpen()).toBe(true);
    expect(await breaker.recordFailure()).toEqual({ tripped: false });
  });

  it('defaults to a threshold of 20', async () => {
    const breaker = createCircuitBreaker({ redis: r.a, prefix: r.prefix, api: API, keyId: KEY });
    const results = [];
    for (let i = 0; i < 21; i++) results.push((await breaker.recordFailure()).tripped);
    expect(results.indexOf(true)).toBe(19);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('a success breaks the run of failures', async () => {
    const breaker = createCircuitBreaker({ redis: r.a, prefix: r.prefix, api: API, keyId: KEY, threshold: 3 });
    await breaker.recordFailure();
    await breaker.recordFailure();
    await breaker.recordSuccess();
    expect((await breaker.recordFailure()).tripped).toBe(false);
    expect((await breaker.recordFailure()).tripped).toBe(false);
    expect((await breaker.recordFailure()).tripped).toBe(true);
  });

  it('trips exactly once when two workers fail concurrently', async () => {
    const a = createCircuitBreaker({ redis: r.a, prefix: r.prefix, api: API, keyId: KEY, threshold: 20 });
    const b = createCircuitBreaker({ redis: r.b, prefix: r.prefix, api: API, keyId: KEY, threshold: 20 });
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).recordFailure()));
    expect(results.filter((x) => x.tripped)).toHaveLength(1);
    expect(await isOpen()).toBe(true);
  });

  it('does not report a trip when it was already opened by hand, and can trip again after close', async () => {
    const breaker = createCircuitBreaker({ redis: r.a, prefix: r.prefix, api: API, keyId: KEY, threshold: 2 });
    await r.a.set(breakerKeys(r.prefix, API, KEY).open, '1');
    await breaker.recordFailure();
    expect((await breaker.recordFailure()).tripped).toBe(false);
    await breaker.close();
    expect(await isOpen()).toBe(false);
    expect((await breaker.recordFailure()).tripped).toBe(false);
    expect((await breaker.recordFailure()).tripped).toBe(true);
  });

  it('lets one worker claim the probe per interval', async () => {
    const a = createCircuitBreaker({ redis: r.a, prefix: r.prefix, api: API, keyId: KEY });
    const b = createCircuitBreaker({ redis: r.b, prefix: r.prefix, api: API, keyId: KEY });
    const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).claimProbe(60_000)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    const ttl = await r.a.pttl(breakerKeys(r.prefix, API, KEY).probe);
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('offers the probe again once the interval has passed', async () => {
    const a = createCircuitBreaker({ redis: r.a, prefix: r.prefix, api: API, keyId: KEY });
    const b = createCircuitBreaker({ redis: r.b, prefix: r.prefix, api: API, keyId: KEY });
    expect(await a.claimProbe(40)).toBe(true);
    expect(await b.claimProbe(40)).toBe(false);
    await new Promise((done) => setTimeout(done, 80));
    expect(await b.claimProbe(40)).toBe(true);
    expect(await a.claimProbe(40)).toBe(false);
  });

  it('keeps one breaker per (API, key): failures and successes of another never move it', async () => {
    const mine = createCircuitBreaker({ redis: r.a, prefix: r.prefix, api: API, keyId: KEY, threshold: 3 });
    const otherKey = createCircuitBreaker({ redis: r.a, prefix: r.prefix, api: API, keyId: 'key-b', threshold: 3 });
    const otherApi = createCircuitBreaker({ redis: r.a, prefix: r.prefix, api: 'mock', keyId: KEY, threshold: 3 });
    await mine.recordFailure();
    await mine.recordFailure();
    // Two failures each elsewhere would trip a shared counter; successes elsewhere would reset it.
    for (const other of [otherKey, otherApi]) {
      expect((await other.recordFailure()).tripped).toBe(false);
      expect((await other.recordFailure()).tripped).toBe(false);
      await other.recordSuccess();
    }
    expect((await mine.recordFailure()).tripped).toBe(true);
    expect(await isOpen()).toBe(true);
    expect(await isOpen(API, 'key-b')).toBe(false);
    expect(await isOpen('mock', KEY)).toBe(false);
    await otherKey.close();
    expect(await isOpen()).toBe(true);
  });
});
