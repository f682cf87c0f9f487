import { describe, expect, it } from 'vitest';
import { createBatchState, type JobState } from '../src/queue/batch-state.js';
import { batchIndexKey, batchKeys } from '../src/redis/keys.js';
import { useRedisPair } from './helpers/redis-pair.js';

const API = 'https://api.stability.ai';

const r = useRedisPair();

const zero = { total: 0, succeeded: 0, filtered: 0, failed: 0, cancelled: 0, pending: 0 };

describe('batch state', () => {
  it('registers new jobs as pending and counts duplicates once', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    expect(await state.counts('b')).toEqual(zero);
    expect(await state.addJobs('b', ['j1', 'j2', 'j3'])).toBe(3);
    await state.setState('b', 'j1', 'succeeded');
    expect(await state.addJobs('b', ['j2', 'j4', 'j4'])).toBe(1);
    expect(await state.counts('b')).toEqual({ ...zero, total: 4, succeeded: 1, pending: 3 });
    expect((await state.states('b')).get('j1')).toBe('succeeded');
  });

  it('puts a job added again back to pending: it is only enqueued again when its image is not on disk', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    await state.addJobs('b', ['j1', 'j2']);
    await state.setState('b', 'j1', 'succeeded');
    await state.setState('b', 'j2', 'failed');
    expect(await state.addJobs('b', ['j1', 'j2'])).toBe(0);
    expect(await state.counts('b')).toEqual({ ...zero, total: 2, pending: 2 });
  });

  it('records many states at once, with the file each finished job saved', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    await state.setStates('b', [
      { jobId: 'j1', state: 'succeeded', file: 'images/00001-a-00000001.png' },
      { jobId: 'j2', state: 'filtered', file: 'images/00002-b-00000002.png' },
    ]);
    await state.setState('b', 'j3', 'succeeded', 'images/00007-c-00000003.png');
    expect(await state.counts('b')).toEqual({ ...zero, total: 3, succeeded: 2, filtered: 1 });
    expect(await state.doneFile('b', 'j3')).toBe('images/00007-c-00000003.png');
    expect(await state.doneFile('b', 'j4')).toBeNull();
  });

  it('gives out each image index once, after the last one and after the highest on disk', async () => {
    const a = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    const b = createBatchState({ redis: r.b, prefix: r.prefix, api: API });
    expect(await a.reserveIndexes('n', 3, 0)).toBe(1); // 1..3
    expect(await b.reserveIndexes('n', 2, 0)).toBe(4); // 4..5
    expect(await a.reserveIndexes('n', 1, 40)).toBe(41); // the disk has 40
    const firsts = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).reserveIndexes('n', 5, 0)));
    const given = firsts.flatMap((f) => [0, 1, 2, 3, 4].map((k) => f + k));
    expect(new Set(given).size).toBe(100);
    expect(Math.min(...given)).toBe(42);
  });

  it('keeps the batches of two APIs apart, even with the same name', async () => {
    const real = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    const mock = createBatchState({ redis: r.a, prefix: r.prefix, api: 'mock' });
    await mock.addJobs('same', ['j1', 'j2']);
    await mock.setState('same', 'j1', 'succeeded', 'images/00001-x-00000001.png');
    await mock.reserveIndexes('same', 7, 0);
    await real.addJobs('same', ['j1']);
    expect(await real.counts('same')).toEqual({ ...zero, total: 1, pending: 1 });
    expect(await real.doneFile('same', 'j1')).toBeNull();
    expect(await real.reserveIndexes('same', 1, 0)).toBe(1);
    expect(await mock.counts('same')).toEqual({ ...zero, total: 2, succeeded: 1, pending: 1 });
    expect(await real.batches()).toEqual(['same']);
  });

  it('counts a final state recorded twice once', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    await state.addJobs('b', ['j1', 'j2']);
    await state.setState('b', 'j1', 'filtered');
    await state.setState('b', 'j1', 'filtered');
    expect(await state.counts('b')).toEqual({ ...zero, total: 2, filtered: 1, pending: 1 });
  });

  it('moves counts through failed → pending → succeeded', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    await state.addJobs('b', ['j1']);
    await state.setState('b', 'j1', 'failed');
    expect(await state.counts('b')).toEqual({ ...zero, total: 1, failed: 1 });
    await state.setState('b', 'j1', 'pending');
    expect(await state.counts('b')).toEqual({ ...zero, total: 1, pending: 1 });
    await state.setState('b', 'j1', 'succeeded');
    expect(await state.counts('b')).toEqual({ ...zero, total: 1, succeeded: 1 });
  });

  it('registers a job first seen in setState', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    await state.setState('b', 'late', 'cancelled');
    expect(await state.counts('b')).toEqual({ ...zero, total: 1, cancelled: 1 });
    expect(await state.batches()).toEqual(['b']);
  });

  it('stays exact under concurrent setState from two connections', async () => {
    const a = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    const b = createBatchState({ redis: r.b, prefix: r.prefix, api: API });
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
    for (const st of states.values()) expected[st as keyof typeof expected]++;
    expect(await b.counts('c')).toEqual(expected);
    expect(expected.succeeded + expected.filtered + expected.failed + expected.pending).toBe(300);
  });

  it('handles large batches in chunks', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    const ids = Array.from({ length: 5001 }, (_, i) => `j${i}`);
    expect(await state.addJobs('big', ids)).toBe(5001);
    expect(await state.addJobs('big', ids)).toBe(0);
    expect((await state.states('big')).size).toBe(5001);
    expect((await state.counts('big')).pending).toBe(5001);
  });

  it('lists batches oldest first and keeps meta', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    await state.addJobs('first', []);
    await new Promise((done) => setTimeout(done, 5));
    await state.setMeta('second', { queue: 'nightshift', api: 'mock' });
    await state.addJobs('first', ['x']);
    expect(await state.batches()).toEqual(['first', 'second']);
    expect(await state.getMeta('second')).toEqual({ queue: 'nightshift', api: 'mock' });
    await state.setMeta('second', { api: 'real' });
    expect(await state.getMeta('second')).toEqual({ queue: 'nightshift', api: 'real' });
    expect(await state.getMeta('none')).toEqual({});
  });

  it('rejects unknown states and keeps keys under the prefix', async () => {
    const state = createBatchState({ redis: r.a, prefix: r.prefix, api: API });
    await expect(state.setState('b', 'j', 'done' as JobState)).rejects.toThrow(RangeError);
    await state.addJobs('b', ['j']);
    await state.setMeta('b', { k: 'v' });
    const keys = (await r.a.keys(`${r.prefix}*`)).sort();
    const k = batchKeys(r.prefix, { api: API, batch: 'b' });
    expect(keys).toEqual([k.counts, k.meta, k.states, batchIndexKey(r.prefix, API)].sort());
    for (const key of keys) expect(key.startsWith(`${r.prefix}:`)).toBe(true);
  });
});
