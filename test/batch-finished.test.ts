/**
 * How `run` decides its batch is finished: the counts say no job is pending, and the queue holds
 * none of its jobs unfinished. The queue is looked at again soon after the counts say done, then at
 * doubling gaps. Real Redis, an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { batchFinishedCheck } from '../src/ops/batch-finished.js';
import { usePipeline } from './helpers/pipeline.js';

describe('batchFinishedCheck', () => {
  const t = usePipeline();

  it('looks at the queue again 50 ms after the counts say done, then at doubling gaps', async () => {
    await t.p.enqueue(['finished check']);
    const [job] = await t.p.ctx.queue.getWaiting();
    let clock = 1_000_000;
    const finished = batchFinishedCheck(t.p.ctx, 'b', () => clock);
    const counts = () => t.p.ctx.state.counts('b');

    expect(await finished(await counts())).toBe(false);
    // Marked done in the batch state while the queue still holds the job, as when a worker has
    // recorded its image and BullMQ has not yet moved the job to completed.
    await t.p.ctx.state.setState('b', job!.id!, 'succeeded');
    expect((await counts()).pending).toBe(0);
    expect(await finished(await counts())).toBe(false);

    clock += 50;
    expect(await finished(await counts())).toBe(false);
    await job!.remove();
    // The next look is 100 ms after the last one: not before.
    clock += 99;
    expect(await finished(await counts())).toBe(false);
    clock += 1;
    expect(await finished(await counts())).toBe(true);
  });
});
