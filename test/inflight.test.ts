/** At most once billing: a job whose request is live elsewhere is delayed, never sent twice. */
import { describe, expect, it } from 'vitest';
import { jobKeys } from '../src/redis/keys.js';
import { waitForBatch, usePipeline } from './helpers/pipeline.js';

describe('in-flight record', () => {
  const t = usePipeline({ latencyMs: [1, 5] });

  it('delays a job held by another live owner until the hold lapses, then sends it exactly once', async () => {
    await t.p.enqueue(['the held one', 'a free one']);
    const jobs = await t.p.ctx.queue.getWaiting();
    const held = jobs.find((j) => j.data.prompt === 'the held one')!;
    const key = jobKeys(t.prefix, { api: t.p.config.api.identity, batch: 'b' }, held.id!).inflight;
    const ttlMs = 1500;
    const heldAt = Date.now();
    expect(await t.redis.set(key, 'another-host:999:deadbeef', 'PX', ttlMs, 'NX')).toBe('OK');

    const arrivals: number[] = [];
    t.mock.setFault(({ prompt }) => {
      if (prompt === 'the held one') arrivals.push(Date.now());
      return undefined;
    });
    await t.p.startWorker();
    // The free job goes through while the other stays unsent (however slow this machine is today).
    const freeSent = () => [...t.mock.stats.generations.keys()].some((k) => k.includes('a free one'));
    for (let i = 0; i < 800 && !freeSent(); i++) await new Promise((r) => setTimeout(r, 25));
    expect(freeSent()).toBe(true);
    expect(arrivals.every((at) => at >= heldAt + ttlMs)).toBe(true);

    const c = await waitForBatch(t.p);
    expect(c).toMatchObject({ succeeded: 2, failed: 0 });
    expect(arrivals).toHaveLength(1);
    expect(arrivals[0]!).toBeGreaterThanOrEqual(heldAt + ttlMs);
    const held1 = [...t.mock.stats.generations.entries()].filter(([k]) => k.includes('the held one'));
    expect(held1.map(([, n]) => n)).toEqual([1]);
    // The hold was not ours to take or remove: the other owner's value was never overwritten before it lapsed,
    // and the worker cleaned up its own claim.
    expect(await t.redis.exists(key)).toBe(0);
    expect((await t.p.ctx.ledger.get('b')).billed).toBe(6);
  });
});
