/**
 * The circuit breaker is per (API, key): two queues worked with two keys against the same API never
 * move each other's breaker, and a trip pauses the queue whose worker reached the threshold.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pipeline, usePipeline, waitForBatch, type Pipeline } from './helpers/pipeline.js';
import { until } from './helpers/wait.js';

describe('circuit breaker per (API, key)', () => {
  const t = usePipeline({ latencyMs: [5, 20] });
  let other: Pipeline;
  let watching = false;
  const pausedEver = { q: false, q2: false };

  beforeEach(async () => {
    other = await pipeline({ prefix: t.prefix, out: t.tmp.dir, apiUrl: t.mock.url, queue: 'q2' });
    pausedEver.q = pausedEver.q2 = false;
    watching = true;
    void (async () => {
      while (watching) {
        if (await t.p.ctx.control.isPaused()) pausedEver.q = true;
        if (await other.ctx.control.isPaused()) pausedEver.q2 = true;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
  });
  afterEach(async () => {
    watching = false;
    await other.close();
  });

  const flags = { breakerThreshold: '5', probeInterval: '0.2', backoff: '1', concurrency: '4' };

  it("failures of two keys do not add up: 3 + 3 in a row trip neither's threshold of 5", async () => {
    // Every first attempt fails; the retries (1 s later) succeed. Six failures come before any success.
    t.mock.setFault(({ model, attempt }) => (model && attempt === 1 ? { status: 500 } : undefined));
    await t.p.enqueue(['key a one', 'key a two', 'key a three'], { batch: 'a' });
    await other.enqueue(['key b one', 'key b two', 'key b three'], { batch: 'b2' });
    await t.p.startWorker(flags, 'sk-key-a');
    await other.startWorker(flags, 'sk-key-b');
    expect(await waitForBatch(t.p, 'a')).toMatchObject({ succeeded: 3, failed: 0 });
    expect(await waitForBatch(other, 'b2')).toMatchObject({ succeeded: 3, failed: 0 });
    expect(t.mock.stats.byStatus.get(500)).toBe(6);
    expect(pausedEver).toEqual({ q: false, q2: false });
  });

  it('a trip pauses only the queue whose key keeps failing; the probe resumes it when the API answers again', async () => {
    let down = true;
    // Key a's answers all fail (the probe's too) until the API recovers; key b's never do.
    t.mock.setFault((_, req) => (down && req?.key === 'sk-key-a' ? { status: 500 } : undefined));
    await t.p.enqueue(
      Array.from({ length: 8 }, (_, i) => `down prompt ${i}`),
      { batch: 'a' },
    );
    await other.enqueue(
      Array.from({ length: 30 }, (_, i) => `healthy prompt ${i}`),
      { batch: 'b2' },
    );
    await other.startWorker({ ...flags, concurrency: '2' }, 'sk-key-b');
    await t.p.startWorker(flags, 'sk-key-a');
    const paused = await until(
      'the circuit pause of q',
      async () => (await t.p.ctx.control.pausedBy())?.reason === 'circuit',
    );
    expect(paused).toBe(true);
    // The healthy queue's successes neither reset the failing key's run nor get paused themselves.
    expect(await waitForBatch(other, 'b2')).toMatchObject({ succeeded: 30, failed: 0 });
    expect(pausedEver.q2).toBe(false);
    expect(await other.ctx.control.pausedBy()).toBeNull();
    expect(await t.p.ctx.queue.isPaused()).toBe(true);

    down = false;
    expect(await waitForBatch(t.p, 'a')).toMatchObject({ succeeded: 8, failed: 0 });
    expect(await t.p.ctx.control.pausedBy()).toBeNull();
    expect(pausedEver.q2).toBe(false);
  });
});
