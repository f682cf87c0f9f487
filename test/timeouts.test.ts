import { afterEach, describe, expect, it, vi } from 'vitest';
import { settleWithin, within } from '../src/timeouts.js';

describe('within: a wait with a deadline', () => {
  afterEach(() => vi.useRealTimers());

  it('gives the answer when it comes before the deadline, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    await expect(within(Promise.resolve('answer'), 1000, 'late')).resolves.toBe('answer');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives the fallback once the deadline passes', async () => {
    vi.useFakeTimers();
    const waiting = within(new Promise<string>(() => {}), 1000, 'late');
    await vi.advanceTimersByTimeAsync(999);
    let settled = false;
    void waiting.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await expect(waiting).resolves.toBe('late');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('passes a rejection through and clears the timer', async () => {
    vi.useFakeTimers();
    await expect(within(Promise.reject(new Error('refused')), 1000, 'late')).rejects.toThrow('refused');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('settleWithin ignores how the wait ends: a rejection or a wait that never ends', async () => {
    vi.useFakeTimers();
    await expect(settleWithin(Promise.reject(new Error('closed')), 1000)).resolves.toBeUndefined();
    const never = settleWithin(new Promise(() => {}), 1000);
    await vi.advanceTimersByTimeAsync(1000);
    await expect(never).resolves.toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });
});
