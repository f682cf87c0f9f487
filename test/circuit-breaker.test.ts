import { describe, expect, it } from 'vitest';
import { createCircuitBreaker } from '../src/billing/breaker.js';
import { useRedisPair } from './helpers/redis-pair.js';

const r = useRedisPair();

describe('circuit breaker', () => {
  it('trips on the threshold-th consecutive failure, reported once', async () => {
    const breaker = createCircuitBreaker({ redis: r.a, prefix: r.prefix, threshold: 5 });
    for (let i = 0; i < 4; i++) expect(await breaker.recordFailure()).toEqual({ tripped: false });
    expect(await breaker.isOpen()).toBe(false);
    expect(await breaker.recordFailure()).toEqual({ tripped: true });
    expect(await breaker.isOpen()).toBe(true);
    expect(await breaker.recordFailure()).toEqual({ tripped: false });
  });

  it('defaults to a threshold of 20', async () => {
    const breaker = createCircuitBreaker({ redis: r.a, prefix: r.prefix });
    const results = [];
    for (let i = 0; i < 21; i++) results.push((await breaker.recordFailure()).tripped);
    expect(results.indexOf(true)).toBe(19);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('a success breaks the run of failures', async () => {
    const breaker = createCircuitBreaker({ redis: r.a, prefix: r.prefix, threshold: 3 });
    await breaker.recordFailure();
    await breaker.recordFailure();
    await breaker.recordSuccess();
    expect((await breaker.recordFailure()).tripped).toBe(false);
    expect((await breaker.recordFailure()).tripped).toBe(false);
    expect((await breaker.recordFailure()).tripped).toBe(true);
  });

  it('trips exactly once when two workers fail concurrently', async () => {
    const a = createCircuitBreaker({ redis: r.a, prefix: r.prefix, threshold: 20 });
    const b = createCircuitBreaker({ redis: r.b, prefix: r.prefix, threshold: 20 });
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).recordFailure()));
    expect(results.filter((r) => r.tripped)).toHaveLength(1);
    expect(await b.isOpen()).toBe(true);
  });

  it('does not report a trip when it was already opened by hand, and can trip again after close', async () => {
    const breaker = createCircuitBreaker({ redis: r.a, prefix: r.prefix, threshold: 2 });
    await breaker.open();
    await breaker.recordFailure();
    expect((await breaker.recordFailure()).tripped).toBe(false);
    await breaker.close();
    expect(await breaker.isOpen()).toBe(false);
    expect((await breaker.recordFailure()).tripped).toBe(false);
    expect((await breaker.recordFailure()).tripped).toBe(true);
  });

  it('lets one worker claim the probe per interval', async () => {
    const a = createCircuitBreaker({ redis: r.a, prefix: r.prefix });
    const b = createCircuitBreaker({ redis: r.b, prefix: r.prefix });
    const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).claimProbe(60_000)));
    expect(claims.filter(Boolean)).toHaveLength(1);
    const ttl = await r.a.pttl(`${r.prefix}:ns:breaker:probe`);
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('offers the probe again once the interval has passed', async () => {
    const a = createCircuitBreaker({ redis: r.a, prefix: r.prefix });
    const b = createCircuitBreaker({ redis: r.b, prefix: r.prefix });
    expect(await a.claimProbe(40)).toBe(true);
    expect(await b.claimProbe(40)).toBe(false);
    await new Promise((r) => setTimeout(r, 80));
    expect(await b.claimProbe(40)).toBe(true);
    expect(await a.claimProbe(40)).toBe(false);
  });
});
