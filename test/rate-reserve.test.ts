/**
 * The limiter schedules instead of polling: a worker that cannot send now is given the exact time
 * of its slot, reserved in Redis, and sleeps until then. Injected clock and sleep: nothing waits.
 */
import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRateLimiter, type RateLimiterOptions, type Slot } from '../src/billing/rate-limiter.js';
import { limiterKeys } from '../src/redis/keys.js';
import { useRedisPair } from './helpers/redis-pair.js';

const r = useRedisPair();

type Opts = Omit<RateLimiterOptions, 'redis' | 'prefix'>;
const on = (redis: Redis, opts: Opts) => createRateLimiter({ redis, prefix: r.prefix, ...opts });

/** A clock that only moves when the code under test sleeps. */
function fakeTime(start: number) {
  const clock = { t: start, sleeps: [] as number[] };
  return {
    clock,
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.sleeps.push(ms);
      clock.t += ms;
    },
  };
}

const at = (s: Slot) => (s.kind === 'slot' ? s.at : -1);
const booked = (s: Slot) => {
  if (s.kind !== 'slot') throw new Error('expected a booked slot');
  return s;
};

describe('reserved slots', () => {
  it('gives workers asking at once exact, distinct slot times in window order', async () => {
    const t0 = 7_000_000;
    const time = fakeTime(t0);
    // 5 per 1000 ms, spread one per 200 ms; two connections stand for two processes.
    const base: Opts = { keyId: 'res', count: 5, windowMs: 1000, marginMs: 0, now: time.now, sleep: time.sleep };
    const [a, b] = [on(r.a, base), on(r.b, base)];
    const slots = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).reserve()));
    const times = slots.map(at).sort((x, y) => x - y);
    expect(times).toEqual(Array.from({ length: 12 }, (_, i) => t0 + 200 * i));
    for (const s of slots) expect(s).toMatchObject({ kind: 'slot', waitMs: at(s) - t0 });
    // Each holder sleeps exactly until its slot, once, and is confirmed there.
    const last = slots.find((s) => at(s) === t0 + 2200)!;
    await a.waitFor(last);
    expect(time.clock.sleeps).toEqual([2200]);
    expect(time.clock.t).toBe(t0 + 2200);
  });

  it('hands a slot given back to the next asker, ahead of the end of the schedule', async () => {
    const t0 = 8_000_000;
    const time = fakeTime(t0);
    const base: Opts = { keyId: 'back', count: 2, windowMs: 1000, marginMs: 0, now: time.now, spread: false };
    const [a, b] = [on(r.a, base), on(r.b, base)];
    const slots = [await a.reserve(), await a.reserve(), await a.reserve(), await a.reserve()];
    expect(slots.map(at)).toEqual([t0, t0, t0 + 1000, t0 + 1000]);
    await a.giveBack(slots[2]!);
    // The next asker (another process) takes the freed slot, not a new one at t0 + 2000.
    expect(at(await b.reserve())).toBe(t0 + 1000);
    expect(at(await b.reserve())).toBe(t0 + 2000);
    // A slot given back after its time has passed is simply gone.
    time.clock.t = t0 + 1500;
    await a.giveBack(slots[3]!);
    expect(await r.a.zcard(limiterKeys(r.prefix, 'back').free)).toBe(0);
  });

  it('gives the slot back when the wait is aborted', async () => {
    const t0 = 9_000_000;
    const clock = { t: t0 };
    const ac = new AbortController();
    const reason = new Error('shutting down');
    const sleep = async () => ac.abort(reason);
    const base: Opts = { keyId: 'abort', count: 1, windowMs: 1000, marginMs: 0, now: () => clock.t, sleep };
    const a = on(r.a, base);
    await a.acquire();
    const slot = await a.reserve();
    expect(slot).toMatchObject({ kind: 'slot', at: t0 + 1000 });
    await expect(a.waitFor(slot, ac.signal)).rejects.toBe(reason);
    expect(at(await on(r.b, base).reserve())).toBe(t0 + 1000);
  });

  it('voids slots inside a lockout: their holders never send before it ends, later slots stand', async () => {
    const t0 = 10_000_000;
    const time = fakeTime(t0);
    const base: Opts = {
      keyId: 'void',
      count: 5,
      windowMs: 1000,
      marginMs: 0,
      now: time.now,
      sleep: time.sleep,
      random: () => 0,
    };
    const a = on(r.a, base);
    const slots: Slot[] = [];
    for (let i = 0; i < 8; i++) slots.push(await a.reserve());
    expect(slots.map(at)).toEqual(Array.from({ length: 8 }, (_, i) => t0 + 200 * i));
    await on(r.b, base).lockout(500);
    const grants = limiterKeys(r.prefix, 'void').grants;
    expect((await r.a.zrange(grants, 0, -1, 'WITHSCORES')).filter((_, i) => i % 2).map(Number)).toEqual([
      t0,
      t0 + 600,
      t0 + 800,
      t0 + 1000,
      t0 + 1200,
      t0 + 1400,
    ]);
    // The holder of t0 + 200 wakes, finds its slot void, waits out the lockout and books anew.
    await a.waitFor(slots[1]!);
    expect(time.clock.t).toBeGreaterThanOrEqual(t0 + 500);
    expect(time.clock.t).toBe(t0 + 1600);
    // The holder of t0 + 600 (after the lockout) keeps its slot.
    time.clock.t = t0 + 600;
    time.clock.sleeps.length = 0;
    await a.waitFor({ ...slots[3]!, waitMs: 0 });
    expect(time.clock.sleeps).toEqual([]);
  });

  it('decides on the real time: a late holder sends late, and one on time waits for the window to free', async () => {
    const t0 = 12_000_000;
    const clock = { t: t0 };
    const base: Opts = { keyId: 'late', count: 2, windowMs: 1000, marginMs: 100, spread: false, now: () => clock.t };
    const a = on(r.a, base);
    await a.acquire();
    clock.t = t0 + 600;
    await a.acquire();
    const [c, d, e] = [await a.reserve(), await a.reserve(), await a.reserve()];
    expect([c, d, e].map(at)).toEqual([t0 + 1100, t0 + 1700, t0 + 2200]);
    // c's holder wakes 700 ms late: the window ending then still has room, so it sends, recorded then.
    clock.t = t0 + 1800;
    await a.waitFor({ ...booked(c), waitMs: 1 });
    const grants = limiterKeys(r.prefix, 'late').grants;
    expect(Number(await r.a.zscore(grants, booked(c).member))).toBe(t0 + 1800);
    // e's holder wakes on time, but c and d (due at t0 + 1700) fill the window ending at t0 + 2200:
    // it waits until the older of them leaves it, exactly, instead of crowding the window.
    clock.t = t0 + 2200;
    const sleeps: number[] = [];
    const waiting = on(r.b, {
      ...base,
      sleep: async (ms: number) => void (sleeps.push(ms), (clock.t += ms)),
    });
    await waiting.waitFor({ ...booked(e), waitMs: 1 });
    expect(sleeps).toEqual([1, 599]);
    expect(clock.t).toBe(t0 + 2800);
  });

  it('spreads holders that all woke late at once: at least half the spacing apart, never a burst', async () => {
    const t0 = 13_000_000;
    const clock = { t: t0 };
    // 5 per 1000 ms, booked 200 ms apart: late holders leave at least 100 ms apart.
    const base: Opts = { keyId: 'burst', count: 5, windowMs: 1000, marginMs: 0, now: () => clock.t };
    const a = on(r.a, base);
    await a.acquire();
    const [b, c] = [booked(await a.reserve()), booked(await a.reserve())];
    expect([b.at, c.at]).toEqual([t0 + 200, t0 + 400]);
    // Both wake at t0 + 450 (a stalled machine); c's holder confirms first.
    clock.t = t0 + 450;
    await a.waitFor({ ...c, waitMs: 1 });
    const sleeps: number[] = [];
    const late = on(r.b, { ...base, sleep: async (ms: number) => void (sleeps.push(ms), (clock.t += ms)) });
    await late.waitFor({ ...b, waitMs: 1 });
    expect(clock.t).toBe(t0 + 550);
    const grants = limiterKeys(r.prefix, 'burst').grants;
    expect(Number(await r.a.zscore(grants, c.member))).toBe(t0 + 450);
    expect(Number(await r.a.zscore(grants, b.member))).toBe(t0 + 550);
  });

  it('a combined script can book through slotRequest with the same rules', async () => {
    const t0 = 11_000_000;
    const a = on(r.a, { keyId: 'combo', count: 1, windowMs: 1000, marginMs: 0, now: () => t0 });
    await a.acquire();
    const req = a.slotRequest();
    expect(req.keys).toEqual([
      limiterKeys(r.prefix, 'combo').grants,
      limiterKeys(r.prefix, 'combo').lockout,
      limiterKeys(r.prefix, 'combo').free,
    ]);
    expect(req.parse([1, t0 + 1000, t0])).toMatchObject({ kind: 'slot', at: t0 + 1000, waitMs: 1000 });
    expect(req.parse([2, t0 + 50, t0])).toEqual({ kind: 'lockout', waitMs: 50 });
  });
});
