/**
 * Enqueue reads a file twice, a chunk at a time: a first pass that validates every line and keeps no
 * spec, then a second that adds the jobs as it reads them. Through the real queue on real Redis.
 */
import { describe, expect, it } from 'vitest';
import { PromptFileError } from '../src/errors.js';
import { usePipeline } from './helpers/pipeline.js';

/** More lines than one chunk of specs (1000) and one addBulk call (500) hold. */
const LINES = 2600;
const lines = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ prompt: `streamed prompt ${i}` }));

describe('streaming enqueue', () => {
  const t = usePipeline();
  // The queue's own meta key is written when the test opens the queue, before any enqueue.
  const keysLeft = async () => (await t.redis.keys(`${t.prefix}*`)).filter((k) => !k.endsWith(':q:meta'));

  it('adds every job of a file larger than a chunk exactly once, numbered 1..n, and nothing on a second enqueue', async () => {
    const first = await t.p.enqueue(lines(LINES), { ext: 'jsonl' });
    expect(first).toMatchObject({ prompts: LINES, jobs: LINES, added: LINES, present: 0 });
    const jobs = await t.p.ctx.queue.getWaiting(0, LINES);
    expect(jobs).toHaveLength(LINES);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(LINES);
    const indexes = jobs.map((j) => j.data.index).sort((a, b) => a - b);
    expect(indexes).toEqual(Array.from({ length: LINES }, (_, i) => i + 1));
    // Each job carries its own line's prompt.
    for (const j of jobs) expect(j.data.prompt).toBe(`streamed prompt ${j.data.line - 1}`);
    expect(await t.p.ctx.state.counts('b')).toMatchObject({ total: LINES, pending: LINES });

    const again = await t.p.enqueue(lines(LINES), { ext: 'jsonl' });
    expect(again).toMatchObject({ added: 0, present: LINES });
    expect(await t.p.ctx.queue.getWaitingCount()).toBe(LINES);
  });

  it('adds nothing when a line near the end is bad, though many chunks before it are good', async () => {
    const file = lines(LINES);
    file[LINES - 3] = JSON.stringify({ prompt: 42 });
    const err = await t.p.enqueue(file, { ext: 'jsonl' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PromptFileError);
    expect((err as PromptFileError).problems.map((p) => p.line)).toEqual([LINES - 2]);
    expect(await t.p.ctx.queue.getJobCounts()).toMatchObject({ waiting: 0, delayed: 0, active: 0 });
    expect(await keysLeft()).toEqual([]);
  });

  it('refuses a batch over --max-jobs before adding anything', async () => {
    const err = await t.p.enqueue(lines(20), { ext: 'jsonl', maxJobs: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(await keysLeft()).toEqual([]);
  });
});
