/**
 * The same batch enqueued on two queues (a rerun on a new queue while the old one still holds its
 * jobs): claims, sent marks and finished images are the job's, not the queue's, so each image is
 * requested once whichever queue's worker gets there first.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readManifest } from '../src/output/manifest.js';
import { createJobLookup } from '../src/queue/queue.js';
import { pipeline, usePipeline, waitForBatch, type Pipeline } from './helpers/pipeline.js';
import { until } from './helpers/wait.js';

describe('one batch on two queues', () => {
  const t = usePipeline({ latencyMs: [150, 300] });
  let other: Pipeline;

  beforeEach(async () => {
    other = await pipeline({ prefix: t.prefix, out: t.tmp.dir, apiUrl: t.mock.url, queue: 'q2' });
  });
  afterEach(() => other.close());

  it('worked on both at once, each image is requested once and each job has one manifest line', async () => {
    const lines = Array.from({ length: 16 }, (_, i) => `two queues prompt ${i}, a quiet harbour`);
    const first = await t.p.enqueue(lines);
    const second = await other.enqueue(lines);
    expect(first).toMatchObject({ added: 16, onDisk: 0 });
    expect(second).toMatchObject({ added: 16, present: 0 });
    await t.p.startWorker({ concurrency: '4' });
    await other.startWorker({ concurrency: '4' });

    expect(await waitForBatch(t.p, 'b')).toMatchObject({ total: 16, succeeded: 16, failed: 0 });
    // Both queues drain: the copies a worker finds finished elsewhere complete without a request.
    const ids = [...(await t.p.ctx.state.states('b')).keys()];
    for (const p of [t.p, other]) {
      const lookup = createJobLookup(p.ctx.redis, p.ctx.prefix, p.ctx.queueName);
      await until(`queue ${p.ctx.queueName} drained`, async () => (await lookup.unfinished(ids)).size === 0);
    }
    expect(t.mock.stats.generations.size).toBe(16);
    expect([...t.mock.stats.generations.values()]).toEqual(Array(16).fill(1));
    const { records } = await readManifest(join(t.tmp.dir, 'b', 'manifest.jsonl'));
    expect(records).toHaveLength(16);
    expect(new Set(records.map((r) => r.file)).size).toBe(16);
    expect((await t.p.ctx.ledger.get('b')).billed).toBe(16 * 3);
  });
});
