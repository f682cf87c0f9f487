/** The paid job's two scripts keep every rule the separate calls kept. Real Redis, injected clock. */
import { describe, expect, it } from 'vitest';
import { createJobSteps } from '../src/billing/job-steps.js';
import { createLedger } from '../src/billing/ledger.js';
import { createRateLimiter } from '../src/billing/rate-limiter.js';
import { createBatchState } from '../src/queue/batch-state.js';
import { batchKeys, jobKeys } from '../src/redis/keys.js';
import { useRedisPair } from './helpers/redis-pair.js';

const r = useRedisPair();
const API = 'mock';

function setup(keyId: string, t = 1_000_000) {
  const clock = { t };
  const limiter = createRateLimiter({
    redis: r.a,
    prefix: r.prefix,
    keyId,
    count: 2,
    windowMs: 1000,
    marginMs: 0,
    spread: false,
    now: () => clock.t,
  });
  const steps = createJobSteps({ redis: r.a, prefix: r.prefix, api: API, claimTtlMs: 5000, limiter });
  const ledger = createLedger({ redis: r.b, prefix: r.prefix, api: API });
  const state = createBatchState({ redis: r.b, prefix: r.prefix, api: API });
  const keys = (id: string) => jobKeys(r.prefix, { api: API, batch: 'b' }, id);
  return { clock, steps, ledger, state, keys };
}

const job = (id: string) => ({ batch: 'b', id });
const opts = { owner: 'w1:t', credits: 3, ownFile: 'images/00001-a.png' };

describe('begin', () => {
  it('claims, reserves, marks sent and books slots in window order', async () => {
    const s = setup('k-begin');
    const got = [];
    for (const id of ['j1', 'j2', 'j3']) got.push(await s.steps.begin(job(id), opts));
    expect(got.map((g) => (g.kind === 'go' && g.slot.kind === 'slot' ? g.slot.waitMs : -1))).toEqual([0, 0, 1000]);
    expect((await s.ledger.get('b')).reserved).toBe(9);
    expect(await r.b.get(s.keys('j1').sent)).toBe('w1:t');
    expect(await r.b.get(s.keys('j1').inflight)).toBe('w1:t');
  });

  it('says held, done or stashed without changing anything', async () => {
    const s = setup('k-look');
    await r.b.set(s.keys('held').inflight, 'other:owner', 'PX', 4000);
    expect(await s.steps.begin(job('held'), opts)).toMatchObject({ kind: 'held' });
    await r.b.hset(batchKeys(r.prefix, { api: API, batch: 'b' }).done, 'done', 'images/00009-z.png');
    expect(await s.steps.begin(job('done'), opts)).toEqual({ kind: 'done', file: 'images/00009-z.png' });
    await r.b.hset(s.keys('st').stash, 'bytes', 'x');
    expect(await s.steps.begin(job('st'), opts)).toEqual({ kind: 'stashed' });
    expect((await s.ledger.get('b')).reserved).toBe(0);
    expect(await r.b.exists(s.keys('done').inflight, s.keys('st').inflight)).toBe(0);
    // Passing over a done record the disk does not confirm claims the job after all.
    expect(await s.steps.begin(job('done'), { ...opts, passDone: true })).toMatchObject({ kind: 'go' });
  });

  it('counts an orphan as possibly billed, and refuses over the budget with the claim dropped', async () => {
    const s = setup('k-orphan');
    await s.ledger.setBudget('b', 7);
    await r.b.set(s.keys('o').sent, '1');
    expect(await s.steps.begin(job('o'), opts)).toMatchObject({ kind: 'go', orphan: true });
    expect(await s.ledger.get('b')).toMatchObject({ maybeBilled: 3, reserved: 3 });
    expect(await s.steps.begin(job('p'), opts)).toEqual({ kind: 'budget', orphan: false, budget: 7, committed: 6 });
    expect(await r.b.exists(s.keys('p').inflight, s.keys('p').sent)).toBe(0);
  });
});

describe('finish', () => {
  it('books the answered request, releases its claim and records the state in one step', async () => {
    const s = setup('k-finish');
    await s.steps.begin(job('j1'), opts);
    await s.steps.finish(job('j1'), { credits: 3, mode: 'paid', owner: 'w1:t', state: 'succeeded', file: 'f.png' });
    expect(await s.ledger.get('b')).toMatchObject({ billed: 3, reserved: 0, maybeBilled: 0 });
    expect(await r.b.exists(s.keys('j1').inflight, s.keys('j1').sent)).toBe(0);
    expect(await s.state.doneFile('b', 'j1')).toBe('f.png');
    expect(await s.state.counts('b')).toMatchObject({ total: 1, succeeded: 1 });
  });

  it('a reused image books a sender that died after its answer, once, and never a live sender', async () => {
    const s = setup('k-reuse');
    await s.steps.begin(job('dead'), opts);
    // The sender died: its claim lapsed, its sent mark and reservation remain.
    await r.b.del(s.keys('dead').inflight);
    const reused = { credits: 3, mode: 'reused' as const, owner: 'w2:t', state: 'succeeded' as const, file: 'f.png' };
    await s.steps.finish(job('dead'), reused);
    await s.steps.finish(job('dead'), reused);
    expect(await s.ledger.get('b')).toMatchObject({ billed: 3, reserved: 0 });
    await s.steps.begin(job('live'), opts);
    // A live claim: its holder books it (or, dead, its claim lapses first); the reuse waits.
    const held = await s.steps.finish(job('live'), reused);
    expect(held).toMatchObject({ kind: 'held' });
    expect((held as { remainingMs: number }).remainingMs).toBeGreaterThan(0);
    expect(await s.ledger.get('b')).toMatchObject({ billed: 3, reserved: 3 });
    expect(await s.state.counts('b')).toMatchObject({ succeeded: 1 });
    await s.steps.finish(job('live'), { ...reused, mode: 'paid', owner: 'w1:t' });
    expect(await s.steps.finish(job('live'), reused)).toEqual({ kind: 'finished' });
    expect(await s.ledger.get('b')).toMatchObject({ billed: 6, reserved: 0 });
    expect(await s.state.counts('b')).toMatchObject({ succeeded: 2 });
  });
});
