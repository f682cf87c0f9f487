import { describe, expect, it } from 'vitest';
import { createConcurrencyController, type ConcurrencyController } from '../workers/concurrency.js';

/**
 * A discrete-time model of workers sharing one key: each keeps `concurrency` requests going, every
 * request first takes a slot of one shared limiter (at most `rate` per second, first come first
 * served), then its answer comes `latencyMs` later. The controllers see what the real worker sees.
 */
function simulate(o: {
  workers: number;
  rate: number;
  latencyMs: (t: number) => number;
  seconds: number;
  max?: number;
}) {
  let now = 0;
  const step = 10;
  const gap = 1000 / o.rate;
  let nextSlot = 0;
  const ctl: ConcurrencyController[] = [];
  const busy: number[] = [];
  const waiting: Array<{ w: number; since: number }> = [];
  const inFlight: Array<{ w: number; sent: number; done: number }> = [];
  const sent: number[] = [];
  for (let w = 0; w < o.workers; w++) {
    ctl.push(
      createConcurrencyController({ keyRate: o.rate, max: o.max ?? 256, memoryBudget: 1 << 30, now: () => now }),
    );
    busy.push(0);
  }
  const trace: Array<{ t: number; total: number; states: ReturnType<ConcurrencyController['current']>[] }> = [];
  for (; now < o.seconds * 1000; now += step) {
    // Fill free slots: a new request joins the limiter's queue.
    for (let w = 0; w < o.workers; w++) {
      while (busy[w]! < ctl[w]!.current().concurrency) {
        busy[w]!++;
        waiting.push({ w, since: now });
      }
    }
    // The limiter grants at most one per gap, in arrival order.
    while (waiting.length > 0 && nextSlot <= now) {
      const r = waiting.shift()!;
      ctl[r.w]!.onGrant(now - r.since);
      inFlight.push({ w: r.w, sent: now, done: now + o.latencyMs(now) });
      sent.push(now);
      nextSlot = Math.max(nextSlot + gap, now - gap * 2);
    }
    for (let i = inFlight.length - 1; i >= 0; i--) {
      const r = inFlight[i]!;
      if (r.done > now) continue;
      inFlight.splice(i, 1);
      ctl[r.w]!.onAnswer(now - r.sent, 1_500_000);
      busy[r.w]!--;
    }
    if (now % 1000 === 0) {
      // What the shared limiter reports: grants in the last window of 10 s, against the limit.
      const utilization = sent.filter((t) => t > now - 10_000).length / (o.rate * 10);
      const states = ctl.map((c, w) => c.tick(busy[w]!, utilization));
      trace.push({ t: now, total: states.reduce((n, s) => n + s.concurrency, 0), states });
    }
  }
  const rateBetween = (a: number, b: number) => sent.filter((t) => t >= a && t < b).length / ((b - a) / 1000);
  return { trace, rateBetween, at: (t: number) => trace.find((x) => x.t >= t)! };
}

describe('auto concurrency', () => {
  it('grows to what Little’s law needs: 15/s at 8 s latency takes about 120 in flight', () => {
    const s = simulate({ workers: 1, rate: 15, latencyMs: () => 8000, seconds: 120 });
    const end = s.at(110_000);
    expect(end.total).toBeGreaterThanOrEqual(120);
    expect(end.total).toBeLessThanOrEqual(150);
    expect(end.states[0]!.bound).toBe('rate limit');
    expect(s.rateBetween(60_000, 120_000)).toBeGreaterThan(15 * 0.97);
  });

  it('shrinks when latency drops, and keeps the rate', () => {
    const s = simulate({ workers: 1, rate: 15, latencyMs: (t) => (t < 90_000 ? 8000 : 2000), seconds: 180 });
    expect(s.at(85_000).total).toBeGreaterThanOrEqual(120);
    const after = s.at(175_000).total;
    expect(after).toBeGreaterThanOrEqual(30);
    expect(after).toBeLessThanOrEqual(40);
    expect(s.rateBetween(120_000, 180_000)).toBeGreaterThan(15 * 0.97);
  });

  it('respects the maximum and says so', () => {
    const s = simulate({ workers: 1, rate: 15, latencyMs: () => 30_000, seconds: 200, max: 64 });
    const end = s.at(190_000);
    expect(end.total).toBe(64);
    expect(end.states[0]!.bound).toBe('maximum');
  });

  it('two workers sharing a key converge on what the limit needs together, not twice it', () => {
    const s = simulate({ workers: 2, rate: 15, latencyMs: () => 8000, seconds: 180 });
    const end = s.at(170_000);
    expect(end.total).toBeGreaterThanOrEqual(120);
    expect(end.total).toBeLessThanOrEqual(150);
    // Never more than the need plus the growth step of one worker, even on the way there.
    expect(Math.max(...s.trace.map((x) => x.total))).toBeLessThanOrEqual(2 * 150);
    expect(s.rateBetween(90_000, 180_000)).toBeGreaterThan(15 * 0.97);
  });

  it('is bounded by memory: answers in flight must fit the budget', () => {
    let now = 0;
    const c = createConcurrencyController({ keyRate: 15, max: 256, memoryBudget: 64 * 1024 * 1024, now: () => now });
    for (let i = 0; i < 100; i++) c.onAnswer(30_000, 4 * 1024 * 1024);
    for (let i = 0; i < 30; i++) {
      now += 1000;
      c.tick(c.current().concurrency, 0.1);
    }
    expect(c.current()).toMatchObject({ concurrency: 8, bound: 'memory' });
  });
});
