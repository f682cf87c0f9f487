import { describe, expect, it } from 'vitest';
import { createLedger } from '../src/billing/ledger.js';
import { batchKeys } from '../src/redis/keys.js';
import { useRedisPair } from './helpers/redis-pair.js';

const API = 'https://api.stability.ai';

/** What a float amount reads back as after the micro-credit round trip. */
const c = (credits: number) => Math.round(credits * 1e6) / 1e6;

const r = useRedisPair();

describe('ledger', () => {
  it('starts empty with no budget', async () => {
    const ledger = createLedger({ redis: r.a, prefix: r.prefix, api: API });
    expect(await ledger.get('b')).toEqual({ billed: 0, maybeBilled: 0, reserved: 0, budget: null });
    expect(await ledger.reserve('b', 1e6)).toEqual({ ok: true });
  });

  it('grants exactly N of 200 concurrent reserves from two workers', async () => {
    const a = createLedger({ redis: r.a, prefix: r.prefix, api: API });
    const b = createLedger({ redis: r.b, prefix: r.prefix, api: API });
    const price = 0.27; // not a binary fraction: float sums would drift
    const n = 37;
    await a.setBudget('race', 3 * price + n * price);
    // Already committed: one billed, one maybe billed, one in flight.
    for (const outcome of ['billed', 'maybe_billed'] as const) {
      expect(await a.reserve('race', price)).toEqual({ ok: true });
      await a.settle('race', price, outcome);
    }
    expect(await a.reserve('race', price)).toEqual({ ok: true });

    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).reserve('race', price)));
    expect(results.filter((x) => x.ok)).toHaveLength(n);
    const refused = results.find((x) => !x.ok);
    expect(refused).toEqual({ ok: false, budget: c(40 * price), committed: c(40 * price) });
    expect(await b.get('race')).toEqual({
      billed: price,
      maybeBilled: price,
      reserved: c(38 * price),
      budget: c(40 * price),
    });
  });

  it('settles each outcome and never lets reserved go below zero', async () => {
    const ledger = createLedger({ redis: r.a, prefix: r.prefix, api: API });
    for (let i = 0; i < 3; i++) await ledger.reserve('s', 6.5);
    await ledger.settle('s', 6.5, 'billed');
    await ledger.settle('s', 6.5, 'maybe_billed');
    await ledger.settle('s', 6.5, 'unbilled');
    expect(await ledger.get('s')).toEqual({ billed: 6.5, maybeBilled: 6.5, reserved: 0, budget: null });
    await ledger.settle('s', 6.5, 'unbilled'); // a second settle of the same job
    expect((await ledger.get('s')).reserved).toBe(0);
  });

  it('adds fractional credits exactly', async () => {
    const ledger = createLedger({ redis: r.a, prefix: r.prefix, api: API });
    await Promise.all(
      Array.from({ length: 1000 }, async () => {
        await ledger.reserve('f', 0.1);
        await ledger.settle('f', 0.1, 'billed');
      }),
    );
    expect((await ledger.get('f')).billed).toBe(100);
  });

  it('refuses over budget until the budget is raised', async () => {
    const ledger = createLedger({ redis: r.a, prefix: r.prefix, api: API });
    await ledger.setBudget('r', 10);
    expect(await ledger.reserve('r', 8)).toEqual({ ok: true });
    await ledger.settle('r', 8, 'billed');
    expect(await ledger.reserve('r', 3)).toEqual({ ok: false, budget: 10, committed: 8 });
    expect(await ledger.raiseBudget('r', 9)).toBe(10); // never lowers
    expect(await ledger.raiseBudget('r', 11)).toBe(11);
    expect(await ledger.reserve('r', 3)).toEqual({ ok: true });
    expect((await ledger.get('r')).budget).toBe(11);
  });

  it('gives a batch without a budget the one it is raised to, and can remove a budget', async () => {
    const ledger = createLedger({ redis: r.a, prefix: r.prefix, api: API });
    expect(await ledger.raiseBudget('u', 5)).toBe(5);
    expect((await ledger.get('u')).budget).toBe(5);
    await ledger.setBudget('u', 1);
    expect((await ledger.reserve('u', 2)).ok).toBe(false);
    await ledger.setBudget('u', null);
    expect((await ledger.reserve('u', 2)).ok).toBe(true);
  });

  it('keeps its keys under the prefix', async () => {
    const ledger = createLedger({ redis: r.a, prefix: r.prefix, api: API });
    await ledger.reserve('k', 1);
    expect(await r.a.keys(`${r.prefix}*`)).toEqual([batchKeys(r.prefix, { api: API, batch: 'k' }).ledger]);
  });

  it("never counts a mock batch's credits against a real batch of the same name", async () => {
    const real = createLedger({ redis: r.a, prefix: r.prefix, api: API });
    const mock = createLedger({ redis: r.a, prefix: r.prefix, api: 'mock' });
    await real.setBudget('x', 6);
    for (let i = 0; i < 3; i++) {
      expect(await mock.reserve('x', 3)).toEqual({ ok: true });
      await mock.settle('x', 3, 'billed');
    }
    expect(await real.reserve('x', 3)).toEqual({ ok: true });
    expect(await real.reserve('x', 3)).toEqual({ ok: true });
    expect((await real.reserve('x', 3)).ok).toBe(false);
    expect((await mock.get('x')).billed).toBe(9);
    expect((await mock.get('x')).budget).toBeNull();
  });

  it('rejects negative or non-finite credits', async () => {
    const ledger = createLedger({ redis: r.a, prefix: r.prefix, api: API });
    await expect(ledger.reserve('x', -1)).rejects.toThrow(RangeError);
    await expect(ledger.reserve('x', Number.NaN)).rejects.toThrow(RangeError);
  });
});
