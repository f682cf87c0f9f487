/** The circuit breaker: consecutive transient failures pause the queue; a probe resumes it by itself. */
import { describe, expect, it } from 'vitest';
import { waitForBatch, usePipeline } from './helpers/pipeline.js';
import { until } from './helpers/wait.js';

describe('circuit breaker', () => {
  const t = usePipeline({ latencyMs: [1, 5] });

  it('pauses the queue after --breaker-threshold 500s in a row, and the probe resumes it when the API recovers', async () => {
    t.mock.setFault(() => ({ status: 500 }));
    await t.p.enqueue(Array.from({ length: 12 }, (_, i) => `breaker prompt ${i}`));
    // A slow backoff keeps every job far from its last attempt while the API is down.
    await t.p.startWorker({ breakerThreshold: '5', probeInterval: '0.2', backoff: '0.3', concurrency: '4' });

    const paused = await until(
      'the circuit pause',
      async () => (await t.p.ctx.control.pausedBy())?.reason === 'circuit' && t.p.ctx.control.pausedBy(),
    );
    expect(paused!.message).toMatch(/5 consecutive transient failures/);
    expect(await t.p.ctx.queue.isPaused()).toBe(true);
    // While it is down, probes fail and the queue stays paused; no job has failed for good.
    const probesBefore = t.mock.stats.total;
    await until('a failed probe', async () => t.mock.stats.total > probesBefore);
    expect(await t.p.ctx.queue.isPaused()).toBe(true);
    expect((await t.p.ctx.state.counts('b')).failed).toBe(0);

    t.mock.setFault(undefined);
    const c = await waitForBatch(t.p, 'b', 30_000);
    expect(c).toMatchObject({ total: 12, succeeded: 12, failed: 0 });
    expect(await t.p.ctx.queue.isPaused()).toBe(false);
    expect(await t.p.ctx.control.pausedBy()).toBeNull();
    expect(t.mock.stats.generations.size).toBe(12);
    for (const n of t.mock.stats.generations.values()) expect(n).toBe(1);
  });
});
