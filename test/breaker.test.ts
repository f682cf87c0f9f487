/** The circuit breaker (SPEC §6): consecutive transient failures pause the queue; a probe resumes it by itself. */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { tempDir } from './helpers/cli.js';
import { cleanupPrefix, newRedis, randomPrefix } from './helpers/redis.js';
import { pipeline, waitForBatch, type Pipeline } from './helpers/pipeline.js';

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('circuit breaker', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  let p: Pipeline;

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    mock = await startMockApi({ latencyMs: [1, 5] });
    p = await pipeline({ prefix, out: tmp.dir, apiUrl: mock.url });
  });
  afterEach(async () => {
    await p.close();
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });
  afterAll(() => redis.disconnect());

  it('pauses the queue after --breaker-threshold 500s in a row, and the probe resumes it when the API recovers', async () => {
    mock.setFault(() => ({ status: 500 }));
    await p.enqueue(Array.from({ length: 12 }, (_, i) => `breaker prompt ${i}`));
    // A slow backoff keeps every job far from its last attempt while the API is down.
    await p.startWorker({ breakerThreshold: '5', probeInterval: '0.2', backoff: '0.3', concurrency: '4' });

    const paused = await until('the circuit pause', async () => (await p.ctx.control.pausedBy())?.reason === 'circuit' && p.ctx.control.pausedBy());
    expect(paused!.message).toMatch(/5 consecutive transient failures/);
    expect(await p.ctx.queue.isPaused()).toBe(true);
    // While it is down, probes fail and the queue stays paused; no job has failed for good.
    const probesBefore = mock.stats.total;
    await until('a failed probe', async () => mock.stats.total > probesBefore);
    expect(await p.ctx.queue.isPaused()).toBe(true);
    expect((await p.ctx.state.counts('b')).failed).toBe(0);

    mock.setFault(undefined);
    const c = await waitForBatch(p, 'b', 30_000);
    expect(c).toMatchObject({ total: 12, succeeded: 12, failed: 0 });
    expect(await p.ctx.queue.isPaused()).toBe(false);
    expect(await p.ctx.control.pausedBy()).toBeNull();
    expect(mock.stats.generations.size).toBe(12);
    for (const n of mock.stats.generations.values()) expect(n).toBe(1);
  });
});
