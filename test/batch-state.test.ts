import { describe, expect, it } from 'vitest';
import { createBatchState, type JobState } from '../src/queue/batch-state.js';
import { useRedisPair } from './helpers/redis-pair.js';

const r = useRedisPair();

const zero = { total: 0, succeeded: 0, filtered: 0, failed: 0, cancelled: 0, pending: 0 };

describe('batch state', () => {
  it('registers new jobs as pending and counts duplicates once', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix });
    expect(await state.counts('b')).toEqual(zero);
    expect(await state.addJobs('b', ['j1', 'j2', 'j3'])).toBe(3);
    await state.setState('b', 'j1', 'succeeded');
    expect(await state.addJobs('b', ['j1', 'j2', 'j4', 'j4'])).toBe(1);
    expect(await state.counts('b')).toEqual({ ...zero, total: 4, succeeded: 1, pending: 3 });
    expect((await state.states('b')).get('j1')).toBe('succeeded'); // re-adding does not reset a state
  });

  it('counts a final state recorded twice once', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix });
    await state.addJobs('b', ['j1', 'j2']);
    await state.setState('b', 'j1', 'filtered');
    await state.setState('b', 'j1', 'filtered');
    expect(await state.counts('b')).toEqual({ ...zero, total: 2, filtered: 1, pending: 1 });
  });

  it('moves counts through failed → pending → succeeded', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix });
    await state.addJobs('b', ['j1']);
    await state.setState('b', 'j1', 'failed');
    expect(await state.counts('b')).toEqual({ ...zero, total: 1, failed: 1 });
    await state.setState('b', 'j1', 'pending');
    expect(await state.counts('b')).toEqual({ ...zero, total: 1, pending: 1 });
    await state.setState('b', 'j1', 'succeeded');
    expect(await state.counts('b')).toEqual({ ...zero, total: 1, succeeded: 1 });
  });

  it('registers a job first seen in setState', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix });
    await state.setState('b', 'late', 'cancelled');
    expect(await state.counts('b')).toEqual({ ...zero, total: 1, cancelled: 1 });
    expect(await state.batches()).toEqual(['b']);
  });

  it('stays exact under concurrent setState from two connections', async () => {
    const a = createBatchState({ redis: r.a, prefix: r.prefix });
    const b = createBatchState({ redis: r.b, prefix: r.prefix });
    const ids = Array.from({ length: 300 }, (_, i) => `j${i}`);
    expect(await a.addJobs('c', ids)).toBe(300);
    const finals: JobState[] = ['succeeded', 'filtered', 'failed'];
    // Every job gets its final state from both workers at once, some after a failure and a retry.
    await Promise.all(
      ids.flatMap((id, i) => {
        const final = finals[i % 3]!;
        const retry = i % 5 === 0 ? [a.setState('c', id, 'failed'), b.setState('c', id, 'pending')] : [];
        return [...retry, a.setState('c', id, final), b.setState('c', id, final)];
      }),
    );
    const states = await a.states('c');
    const expected = { ...zero, total: 300 };
    for (const s of states.values()) expected[s as keyof typeof expected]++;
    expect(await b.counts('c')).toEqual(expected);
    expect(expected.succeeded + expected.filtered + expected.failed + expected.pending).toBe(300);
  });

  it('handles large batches in chunks', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix });
    const ids = Array.from({ length: 5001 }, (_, i) => `j${i}`);
    expect(await state.addJobs('big', ids)).toBe(5001);
    expect(await state.addJobs('big', ids)).toBe(0);
    expect((await state.states('big')).size).toBe(5001);
    expect((await state.counts('big')).pending).toBe(5001);
  });

  it('lists batches oldest first and keeps meta', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix });
    await state.addJobs('first', []);
    await new Promise((r) => setTimeout(r, 5));
    await state.setMeta('second', { queue: 'nightshift', api: 'mock' });
    await state.addJobs('first', ['x']);
    expect(await state.batches()).toEqual(['first', 'second']);
    expect(await state.getMeta('second')).toEqual({ queue: 'nightshift', api: 'mock' });
    await state.setMeta('second', { api: 'real' });
    expect(await state.getMeta('second')).toEqual({ queue: 'nightshift', api: 'real' });
    expect(await state.getMeta('none')).toEqual({});
  });

  it('rejects unknown states and keeps keys under the prefix', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix });
    await expect(state.setState('b', 'j', 'done' as JobState)).rejects.toThrow(RangeError);
    await state.addJobs('b', ['j']);
    await state.setMeta('b', { k: 'v' });
    const keys = (await r.a.keys(`${r.prefix}*`)).sort();
    expect(keys).toEqual([
      `${r.prefix}:ns:batch:b:counts`,
      `${r.prefix}:ns:batch:b:meta`,
      `${r.prefix}:ns:batch:b:states`,
      `${r.prefix}:ns:batches`,
    ]);
  });
});
