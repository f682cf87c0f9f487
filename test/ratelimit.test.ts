import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { apiKeyId, createRateLimiter, defaultMarginMs, type RateLimiterOptions } from '../src/billing/rate-limiter.js';
import { limiterKeys } from '../src/redis/keys.js';
import { maxInWindow } from '../src/mock-api/stats.js';
import { useRedisPair } from './helpers/redis-pair.js';

/** Seeded PRNG so a failing property run can be replayed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Virtual time for many concurrent actors: the clock only moves when every live actor is asleep,
 * then jumps to the earliest wake-up. No real sleeping, and no actor sees time move mid-call.
 */
function virtualTime(start: number) {
  let now = start;
  let alive = 0;
  const sleepers: Array<{ at: number; resolve: () => void }> = [];
  const wake = () => {
    if (alive === 0 || sleepers.length < alive) return;
    sleepers.sort((a, b) => a.at - b.at); // stable: equal wake-ups keep their order
    now = Math.max(now, sleepers[0]!.at);
    while (sleepers[0]?.at === now) sleepers.shift()!.resolve();
  };
  const sleep = (ms: number) => new Promise<void>((resolve) => (sleepers.push({ at: now + ms, resolve }), wake()));
  const run = async (actors: Array<() => Promise<void>>) => {
    alive = actors.length;
    await Promise.all(actors.map((actor) => actor().finally(() => (alive--, wake()))));
  };
  return { now: () => now, sleep, run };
}

const r = useRedisPair();

type Opts = Omit<RateLimiterOptions, 'redis' | 'prefix'>;
// Most tests check the window itself, so grants are not spread unless a test asks for it.
const limiterOn = (redis: Redis, opts: Opts) => createRateLimiter({ redis, prefix: r.prefix, spread: false, ...opts });

describe('sliding window with an injected clock', () => {
  it('never grants more than count in any window, and refuses only when the window is full', async () => {
    const rand = mulberry32(0x5eed);
    let refusals = 0;
    for (let run = 0; run < 40; run++) {
      const count = 1 + Math.floor(rand() * 8);
      const windowMs = 50 + Math.floor(rand() * 5000);
      const marginMs = rand() < 0.25 ? 0 : Math.floor(rand() * 300);
      const span = windowMs + marginMs;
      const clock = { t: 1_700_000_000_000 + Math.floor(rand() * 1e9) };
      const opts: Opts = { keyId: `prop${run}`, count, windowMs, marginMs, now: () => clock.t };
      // Two "processes" on two connections sharing the key.
      const limiters = [limiterOn(r.a, opts), limiterOn(r.b, opts)];
      const grants: number[] = [];
      for (let step = 0; step < 120; step++) {
        const x = rand();
        clock.t += x < 0.3 ? 0 : x < 0.8 ? Math.floor((rand() * 2 * span) / count) : Math.floor(rand() * 2 * span);
        const calls = rand() < 0.2 ? 2 + Math.floor(rand() * 6) : 1;
        const results = await Promise.all(Array.from({ length: calls }, (_, i) => limiters[i % 2]!.tryAcquire()));
        const now = clock.t;
        for (const res of results) if (res.granted) grants.push(now);
        for (const res of results) {
          if (res.granted) continue;
          refusals++;
          // A refusal is only right when the window really is full, and the wait is exact.
          const live = grants.filter((g) => g > now - span);
          expect(res.reason).toBe('window');
          expect(live.length).toBe(count);
          expect(res.waitMs).toBe(live[0]! + span - now);
        }
      }
      // Windows of windowMs lie inside windows of span, so this bounds them too.
      expect(maxInWindow(grants, span)).toBeLessThanOrEqual(count);
      expect(maxInWindow(grants, windowMs)).toBeLessThanOrEqual(count);
    }
    expect(refusals).toBeGreaterThan(200);
  });

  it('approaches count / (windowMs + marginMs) when saturated by many workers', async () => {
    const count = 150;
    const windowMs = 10_000;
    const marginMs = 250;
    const span = windowMs + marginMs;
    const rand = mulberry32(42);
    const vt = virtualTime(1_700_000_000_000);
    const opts: Opts = { keyId: 'saturated', count, windowMs, marginMs, now: vt.now, sleep: vt.sleep, random: rand };
    // Four processes on two connections, five concurrent jobs each.
    const limiters = [r.a, r.b, r.a, r.b].map((conn) => limiterOn(conn, opts));
    const windows = 20;
    const end = vt.now() + windows * span;
    const grants: number[] = [];
    const actors = Array.from({ length: 20 }, (_, i) => async () => {
      const limiter = limiters[i % limiters.length]!;
      while (vt.now() < end) {
        await limiter.acquire();
        grants.push(vt.now());
        await vt.sleep(100 + Math.floor(rand() * 200)); // the request itself
      }
    });
    await vt.run(actors);

    expect(maxInWindow(grants, span)).toBeLessThanOrEqual(count);
    const measured = windows - 1;
    const t0 = grants[0]!;
    const inSteadyRun = grants.filter((g) => g < t0 + measured * span).length;
    const ratio = inSteadyRun / (measured * count);
    // Finer: how long a slot takes to be reused; span is the best possible.
    let reuse = 0;
    for (let i = 0; i + count < grants.length; i++) reuse += grants[i + count]! - grants[i]!;
    const reuseRatio = span / (reuse / (grants.length - count));
    console.info(
      `saturation: ${inSteadyRun} grants in ${measured} windows of ${span} ms = ${ratio.toFixed(4)} of count/(windowMs+marginMs); ` +
        `mean slot reuse ${(reuse / (grants.length - count)).toFixed(1)} ms = ${reuseRatio.toFixed(4)}`,
    );
    expect(ratio).toBeGreaterThanOrEqual(0.98);
    expect(reuseRatio).toBeGreaterThanOrEqual(0.98);
    expect(ratio).toBeLessThanOrEqual(1);
  });

  it('shares one limit between limiters with the same keyId, not across keyIds', async () => {
    const clock = { t: 1_000_000 };
    const base: Opts = { keyId: 'k1', count: 3, windowMs: 1000, marginMs: 250, now: () => clock.t };
    const a = limiterOn(r.a, base);
    const b = limiterOn(r.b, base);
    const other = limiterOn(r.b, { ...base, keyId: 'k2' });
    expect(await a.tryAcquire()).toMatchObject({ granted: true });
    expect(await b.tryAcquire()).toMatchObject({ granted: true });
    expect(await a.tryAcquire()).toMatchObject({ granted: true });
    expect(await b.tryAcquire()).toEqual({ granted: false, waitMs: 1250, reason: 'window' });
    expect(await a.inWindow()).toBe(3);
    for (let i = 0; i < 3; i++) expect(await other.tryAcquire()).toMatchObject({ granted: true });
    clock.t += 1249;
    expect((await b.tryAcquire()).granted).toBe(false);
    clock.t += 1;
    expect(await b.tryAcquire()).toMatchObject({ granted: true });
  });
});

describe('lockout', () => {
  it('blocks every limiter on the key, even with free slots, and ends', async () => {
    const clock = { t: 5_000_000 };
    const base: Opts = { keyId: 'lk', count: 10, windowMs: 1000, now: () => clock.t };
    const [a, b, other] = [limiterOn(r.a, base), limiterOn(r.b, base), limiterOn(r.b, { ...base, keyId: 'lk-other' })];
    await a.lockout(60_000);
    expect(await b.tryAcquire()).toEqual({ granted: false, waitMs: 60_000, reason: 'lockout' });
    expect(await other.tryAcquire()).toMatchObject({ granted: true });
    clock.t += 59_999;
    expect(await a.tryAcquire()).toEqual({ granted: false, waitMs: 1, reason: 'lockout' });
    expect(await b.lockoutRemainingMs()).toBe(1);
    clock.t += 1;
    expect(await b.lockoutRemainingMs()).toBe(0);
    expect(await b.tryAcquire()).toMatchObject({ granted: true });
  });

  it('is never shortened, only extended', async () => {
    const clock = { t: 9_000_000 };
    const a = limiterOn(r.a, { keyId: 'ls', count: 1, windowMs: 1000, now: () => clock.t });
    await a.lockout(60_000);
    await a.lockout(1_000);
    expect(await a.lockoutRemainingMs()).toBe(60_000);
    clock.t += 10_000;
    await a.lockout(30_000);
    expect(await a.lockoutRemainingMs()).toBe(50_000);
    await a.lockout(90_000);
    expect(await a.lockoutRemainingMs()).toBe(90_000);
  });

  it('acquire() waits it out in capped sleeps', async () => {
    const clock = { t: 2_000_000 };
    const sleeps: number[] = [];
    const sleep = async (ms: number) => void (sleeps.push(ms), (clock.t += ms));
    const a = limiterOn(r.a, { keyId: 'la', count: 5, windowMs: 1000, now: () => clock.t, sleep });
    await a.lockout(5_500);
    const start = clock.t;
    await a.acquire();
    expect(clock.t).toBeGreaterThanOrEqual(start + 5_500);
    expect(sleeps.length).toBeGreaterThanOrEqual(6);
    for (const ms of sleeps) expect(ms).toBeLessThanOrEqual(1025);
  });
});

describe('acquire() cancellation', () => {
  it('rejects with the signal reason (injected sleep)', async () => {
    const clock = { t: 3_000_000 };
    const ac = new AbortController();
    const reason = new Error('shutting down');
    const sleep = async () => ac.abort(reason);
    const a = limiterOn(r.a, { keyId: 'ab', count: 1, windowMs: 10_000, now: () => clock.t, sleep });
    await a.acquire();
    await expect(a.acquire(ac.signal)).rejects.toBe(reason);
  });

  it('rejects with the signal reason while sleeping (real clock)', async () => {
    const a = limiterOn(r.a, { keyId: 'ab2', count: 1, windowMs: 10_000 });
    await a.acquire();
    const reason = new Error('stop');
    const ac = new AbortController();
    const aborted = a.acquire(ac.signal);
    setTimeout(() => ac.abort(reason), 30);
    await expect(aborted).rejects.toBe(reason);
  });
});

describe('Redis clock (no injected now)', () => {
  it('limits and locks out using Redis TIME', async () => {
    const a = limiterOn(r.a, { keyId: 'rt', count: 3, windowMs: 2000 });
    const b = limiterOn(r.b, { keyId: 'rt', count: 3, windowMs: 2000 });
    for (let i = 0; i < 3; i++) expect((await (i % 2 ? a : b).tryAcquire()).granted).toBe(true);
    const refused = await a.tryAcquire();
    expect(refused).toMatchObject({ granted: false, reason: 'window' });
    expect(refused.granted ? 0 : refused.waitMs).toSatisfy((ms: number) => ms > 2000 && ms <= 2250);
    expect(await b.inWindow()).toBe(3);
    await a.lockout(5000);
    expect(await b.lockoutRemainingMs()).toSatisfy((ms: number) => ms > 4800 && ms <= 5000);
    // Both keys expire by themselves, so idle limiters vanish.
    expect(await r.a.pttl(limiterKeys(r.prefix, 'rt').lockout)).toBeGreaterThan(4800);
    expect(await r.a.pttl(limiterKeys(r.prefix, 'rt').grants)).toBeGreaterThan(2250);
  });
});

describe('apiKeyId', () => {
  it('is 16 hex digits of sha256, stable, and not the key', () => {
    const id = apiKeyId('sk-secret-123');
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(apiKeyId('sk-secret-123')).toBe(id);
    expect(apiKeyId('sk-secret-124')).not.toBe(id);
  });
});

describe('spreading', () => {
  it('defaults the margin to 2.5% of the window, at least 100 ms', () => {
    expect(defaultMarginMs(10_000)).toBe(250);
    expect(defaultMarginMs(5_000)).toBe(125);
    expect(defaultMarginMs(1_000)).toBe(100);
  });

  it('spaces grants one per (window+margin)/count across limiters, and still never exceeds count per window', async () => {
    const clock = { t: 9_000_000 };
    const base: Opts = { keyId: 'sp', count: 10, windowMs: 1000, marginMs: 0, now: () => clock.t, spread: true };
    const a = createRateLimiter({ redis: r.a, prefix: r.prefix, ...base });
    const b = createRateLimiter({ redis: r.b, prefix: r.prefix, ...base });
    expect(await a.tryAcquire()).toMatchObject({ granted: true });
    expect(await b.tryAcquire()).toEqual({ granted: false, waitMs: 100, reason: 'window' });
    clock.t += 99;
    expect((await a.tryAcquire()).granted).toBe(false);
    clock.t += 1;
    expect(await b.tryAcquire()).toMatchObject({ granted: true });
    // Saturated for 10 s of virtual time: 10 per second, evenly.
    const grants: number[] = [clock.t - 100, clock.t];
    const end = clock.t + 10_000;
    while (clock.t < end) {
      clock.t += 2;
      if ((await (clock.t % 2 ? a : b).tryAcquire()).granted) grants.push(clock.t);
    }
    expect(maxInWindow(grants, 1000)).toBeLessThanOrEqual(10);
    expect(grants.length).toBeGreaterThanOrEqual(100); // 2 + ~10 per virtual second
    for (let i = 1; i < grants.length; i++) expect(grants[i]! - grants[i - 1]!).toBeGreaterThanOrEqual(100);
  });
});
