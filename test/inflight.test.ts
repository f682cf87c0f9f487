/** At most once billing (SPEC §6): a job whose request is live elsewhere is delayed, never sent twice. */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { tempDir } from './helpers/cli.js';
import { cleanupPrefix, newRedis, randomPrefix } from './helpers/redis.js';
import { pipeline, waitForBatch, type Pipeline } from './helpers/pipeline.js';

describe('in-flight record', () => {
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

  it('delays a job held by another live owner until the hold lapses, then sends it exactly once', async () => {
    await p.enqueue(['the held one', 'a free one']);
    const jobs = await p.ctx.queue.getWaiting();
    const held = jobs.find((j) => j.data.prompt === 'the held one')!;
    const key = `${prefix}:ns:q:inflight:${held.id}`;
    const ttlMs = 1500;
    const heldAt = Date.now();
    expect(await redis.set(key, 'another-host:999:deadbeef', 'PX', ttlMs, 'NX')).toBe('OK');

    const arrivals: number[] = [];
    mock.setFault(({ prompt }) => {
      if (prompt === 'the held one') arrivals.push(Date.now());
      return undefined;
    });
    await p.startWorker();
    // The free job goes through while the other stays unsent (however slow this machine is today).
    const freeSent = () => [...mock.stats.generations.keys()].some((k) => k.includes('a free one'));
    for (let i = 0; i < 200 && !freeSent(); i++) await new Promise((r) => setTimeout(r, 25));
    expect(freeSent()).toBe(true);
    expect(arrivals.every((t) => t >= heldAt + ttlMs)).toBe(true);

    const c = await waitForBatch(p);
    expect(c).toMatchObject({ succeeded: 2, failed: 0 });
    expect(arrivals).toHaveLength(1);
    expect(arrivals[0]!).toBeGreaterThanOrEqual(heldAt + ttlMs);
    const held1 = [...mock.stats.generations.entries()].filter(([k]) => k.includes('the held one'));
    expect(held1.map(([, n]) => n)).toEqual([1]);
    // The hold was not ours to take or remove: the other owner's value was never overwritten before it lapsed,
    // and the worker cleaned up its own claim.
    expect(await redis.exists(key)).toBe(0);
    expect((await p.ctx.ledger.get('b')).billed).toBe(6);
  });
});
