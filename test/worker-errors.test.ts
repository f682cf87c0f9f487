import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifest } from '../src/output/manifest.js';
import { waitForBatch, usePipeline } from './helpers/pipeline.js';

const hash = (s: string) => createHash('sha256').update(s).digest();

describe('worker: each error class gets its action', () => {
  const t = usePipeline({ latencyMs: [1, 10] });

  const records = async (batch = 'b') => (await readManifest(join(t.tmp.dir, batch, 'manifest.jsonl'))).records;

  it('transient: 15% of requests fail with 500 (decided from prompt, seed, attempt) and every image still arrives exactly once', async () => {
    t.mock.setFault(({ prompt, seed, attempt }) =>
      hash(`${prompt}|${seed}|${attempt}`)[0]! < 0.15 * 256 ? { status: 500 } : undefined,
    );
    const lines = Array.from({ length: 60 }, (_, i) => `prompt number ${i}, a quiet harbour`);
    await t.p.enqueue(lines);
    await t.p.startWorker();
    await t.p.startWorker();
    const counts = await waitForBatch(t.p);
    expect(counts.succeeded).toBe(60);
    expect(t.mock.stats.byStatus.get(500) ?? 0).toBeGreaterThan(0);
    expect(t.mock.stats.generations.size).toBe(60);
    for (const n of t.mock.stats.generations.values()) expect(n).toBe(1);
    const recs = await records();
    expect(recs.filter((r) => r.status === 'succeeded')).toHaveLength(60);
    expect(Math.max(...recs.map((r) => r.attempts))).toBeGreaterThan(1);
  });

  it('invalid_request and moderated fail at once with the API message, unbilled', async () => {
    t.mock.setFault(({ prompt }) =>
      prompt.includes('bad shape')
        ? { status: 422, name: 'invalid_language', message: 'English is the only supported language for this service.' }
        : undefined,
    );
    await t.p.enqueue(['a forbidden thing', 'a bad shape', 'a good one']);
    await t.p.startWorker();
    await waitForBatch(t.p);
    const recs = await records();
    const byPrompt = Object.fromEntries(recs.map((r) => [r.prompt, r]));
    expect(byPrompt['a forbidden thing']!.error!.class).toBe('moderated');
    expect(byPrompt['a bad shape']!.error!.class).toBe('invalid_request');
    expect(byPrompt['a bad shape']!.error!.message).toContain('English is the only supported language');
    expect(byPrompt['a bad shape']!.attempts).toBe(1);
    expect(byPrompt['a good one']!.status).toBe('succeeded');
    expect((await t.p.ctx.ledger.get('b')).billed).toBe(3);
  });

  it('CONTENT_FILTERED is saved, billed and flagged as filtered', async () => {
    await t.p.enqueue(['please blur-me now']);
    await t.p.startWorker();
    const c = await waitForBatch(t.p);
    expect(c.filtered).toBe(1);
    const [r] = await records();
    expect(r!.status).toBe('filtered');
    expect(r!.credits).toBe(3);
    expect((await readFile(join(t.tmp.dir, 'b', r!.file!))).length).toBe(r!.bytes);
  });

  for (const [status, cls] of [
    [401, 'auth'],
    [402, 'payment'],
  ] as const) {
    it(`${status} pauses the queue, stops the worker with exit 4 and fails no job`, async () => {
      t.mock.setFault(() => ({ status }));
      await t.p.enqueue(['one', 'two', 'three']);
      const w = await t.p.startWorker({ concurrency: '1' });
      expect(await w.done).toBe(4);
      expect(await t.p.ctx.queue.isPaused()).toBe(true);
      expect((await t.p.ctx.control.pausedBy())!.reason).toBe(cls);
      const c = await t.p.ctx.state.counts('b');
      expect(c.failed).toBe(0);
      expect(c.pending).toBe(3);
      const jc = await t.p.ctx.queue.getJobCounts('failed', 'wait', 'active');
      expect(jc.failed).toBe(0);
      // After the fix, resume finishes the batch with nothing lost.
      t.mock.setFault(undefined);
      await t.p.ctx.control.resume();
      await t.p.startWorker();
      expect((await waitForBatch(t.p)).succeeded).toBe(3);
    });
  }

  it('timeout: possibly billed, retried at most --timeout-retries times, then failed', async () => {
    t.mock.setFault(({ prompt }) => (prompt === 'slow' ? { kind: 'hang' } : undefined));
    await t.p.enqueue(['slow', 'fast']);
    await t.p.startWorker({ requestTimeout: '0.2', timeoutRetries: '1' });
    await waitForBatch(t.p);
    const recs = Object.fromEntries((await records()).map((r) => [r.prompt, r]));
    expect(recs.slow!.status).toBe('failed');
    expect(recs.slow!.error!.class).toBe('timeout');
    expect(recs.fast!.status).toBe('succeeded');
    expect((await t.p.ctx.ledger.get('b')).maybeBilled).toBe(6); // two timed-out requests × 3 credits
  });

  it('budget: two workers stop the batch at exactly the budget', async () => {
    const lines = Array.from({ length: 20 }, (_, i) => `budget prompt ${i}`);
    await t.p.enqueue(lines, { maxCredits: 21 }); // core = 3 credits: 7 images fit
    await t.p.startWorker();
    await t.p.startWorker();
    const c = await waitForBatch(t.p);
    expect(c.succeeded).toBe(7);
    expect(c.failed).toBe(13);
    expect(t.mock.stats.generations.size).toBe(7);
    const failed = (await records()).filter((r) => r.status === 'failed');
    expect(new Set(failed.map((r) => r.error!.class))).toEqual(new Set(['budget']));
  });

  it('429: every worker waits out the lockout and the job does not use an attempt', async () => {
    let sent429 = false;
    t.mock.setFault(() => {
      if (sent429) return undefined;
      sent429 = true;
      return { status: 429 };
    });
    await t.p.enqueue(Array.from({ length: 10 }, (_, i) => `limited ${i}`));
    const t0 = Date.now();
    await t.p.startWorker({ lockout: '2', concurrency: '1' });
    await t.p.startWorker({ lockout: '2', concurrency: '1' });
    await waitForBatch(t.p);
    const first = t.mock.stats.arrivals[0]!;
    // Apart from a request already on its way (the other worker's, which the fake may handle a few
    // hundred ms late on a busy machine), none reached the API during the 2 s lockout after the 429.
    const during = t.mock.stats.arrivals.filter((at) => at > first + 400 && at < first + 1800);
    expect(during).toEqual([]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1800);
    const recs = await records();
    expect(recs.every((r) => r.status === 'succeeded' && r.attempts === 1)).toBe(true);
  });
});
