/** `status`: its `--json` fields against a batch with known outcomes, plus throughput, errors and the concurrency hint. */
import { describe, expect, it } from 'vitest';
import { apiKeyId } from '../src/billing/rate-limiter.js';
import { queueStatus, formatStatus } from '../src/ops/status.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { redisUrl } from './helpers/redis.js';
import { until } from './helpers/wait.js';
import { waitForBatch, usePipeline } from './helpers/pipeline.js';

describe('status', () => {
  const t = usePipeline({ latencyMs: [1, 5] });

  const rate = { keyId: apiKeyId('sk-test'), count: 1000, windowMs: 60_000 };

  it('counts a finished batch of 3 succeeded, 1 filtered and 2 failed', async () => {
    t.mock.setFault(({ prompt }) =>
      prompt === 'a bad shape' ? { status: 422, name: 'invalid_language', message: 'English only.' } : undefined,
    );
    await t.p.enqueue(['ok one', 'ok two', 'ok three', 'please blur-me', 'a forbidden thing', 'a bad shape']);
    await t.p.startWorker();
    await waitForBatch(t.p);
    // The batch state is final a moment before BullMQ moves the last job to completed or failed.
    await until('BullMQ to finish the jobs', async () => {
      const c = await t.p.ctx.queue.getJobCounts('completed', 'failed');
      return (c.completed ?? 0) + (c.failed ?? 0) === 6;
    });

    const s = await queueStatus(t.p.ctx, { out: t.tmp.dir, rate });
    expect(s.queue).toBe('q');
    expect(s.paused).toBe(false);
    expect(s.counts).toEqual({ waiting: 0, active: 0, delayed: 0, completed: 4, failed: 2 });
    expect(s.batches.b).toMatchObject({ total: 6, succeeded: 3, filtered: 1, failed: 2, pending: 0, credits: 12 });
    expect(s.throughput).toMatchObject({ finished: 6, last_minute: 6 });
    expect(s.eta_s).toBeNull();
    expect(Object.keys(s.last_errors).sort()).toEqual(['invalid_request', 'moderated']);
    expect(s.last_errors.invalid_request!.last.message).toContain('English only.');
    expect(s.last_errors.moderated!.count).toBe(1);
    expect(s.rate).toMatchObject({ count: 1000, used_in_window: 6, lockout_remaining_ms: 0 });
    expect(s.lockout_ms).toBe(0);
    expect(s.batches.b!.budget).toBeNull();
    expect(s.hints).toEqual([]);
    expect(formatStatus(s)).toMatch(/b\s+6\s+3\s+1\s+2\s+0\s+12/);

    // The same through the CLI.
    // The same API as the workers: a batch is (API, name).
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: t.prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_KEY: 'sk-test',
      STABILITY_API_HOST: t.mock.url,
    });
    const r = await runCli(['status', '--json', '--queue', 'q', '--out', t.tmp.dir, '--rate', '1000/60'], env);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as typeof s;
    expect(j.counts).toEqual(s.counts);
    expect(j.batches.b).toMatchObject({ total: 6, succeeded: 3, filtered: 1, failed: 2, pending: 0, credits: 12 });
    expect(j.last_errors.moderated!.count).toBe(1);
    expect(j.rate!.used_in_window).toBe(6);
  });

  it('--batch with a name no batch has is a usage error, not an empty batch', async () => {
    await t.p.enqueue(['one prompt'], { batch: 'known' });
    const env = cliEnv({
      NIGHTSHIFT_PREFIX: t.prefix,
      REDIS_URL: redisUrl(),
      STABILITY_API_KEY: 'sk-test',
      STABILITY_API_HOST: t.mock.url,
    });
    const known = await runCli(['status', '--json', '--queue', 'q', '--batch', 'known'], env);
    expect(known.code, known.stderr).toBe(0);
    expect((JSON.parse(known.stdout) as { batches: object }).batches).toHaveProperty('known');
    const typo = await runCli(['status', '--queue', 'q', '--batch', 'knwon'], env);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('there is no batch "knwon"');
    // Another API's batch of that name is another batch.
    const mock = await runCli(['status', '--queue', 'q', '--batch', 'known', '--mock'], env);
    expect(mock.code).toBe(2);
  });

  it('says so when concurrency rather than the rate limit bounds throughput, and gives an ETA', async () => {
    // Two finished jobs give a throughput; five more hang, so both slots stay busy with a backlog behind them.
    await t.p.enqueue(['quick one', 'quick two'], { batch: 'quick' });
    await t.p.startWorker({ concurrency: '2' });
    await waitForBatch(t.p, 'quick');
    t.mock.setFault(({ prompt }) => (prompt.startsWith('slow') ? { kind: 'hang' } : undefined));
    await t.p.enqueue(['slow 1', 'slow 2', 'slow 3', 'slow 4', 'slow 5']);
    const end = Date.now() + 10_000;
    while ((await t.p.ctx.queue.getJobCounts('active')).active! < 2) {
      if (Date.now() > end) throw new Error('the slow jobs never became active');
      await new Promise((r) => setTimeout(r, 25));
    }
    // The running worker registered itself; a stale entry (a worker dead for an hour) is skipped.
    await t.p.ctx.workers.register('gone', { concurrency: 64, heartbeat: Date.now() - 3_600_000 });
    const s = await queueStatus(t.p.ctx, { rate });
    expect(s.workers.map((w) => w.concurrency)).toEqual([2]);
    expect(s.counts).toMatchObject({ active: 2, waiting: 3 });
    expect(s.eta_s).toBeGreaterThan(0);
    expect(s.hints.join('\n')).toMatch(/concurrency, not the rate limit, bounds throughput/);
    expect(formatStatus(s)).toContain('hint: concurrency');
  });

  it("shows the workers' rate limit unless --rate says otherwise", async () => {
    await t.p.startWorker({ rate: '7/3' });
    const def = { ...rate, count: 150, windowMs: 10_000 };
    const s = await until('the worker registered', async () => {
      const st = await queueStatus(t.p.ctx, { rate: def, rateIsDefault: true });
      return st.workers.length > 0 ? st : null;
    });
    expect(s.rate).toMatchObject({ count: 7, window_s: 3 });
    // A limit given to status itself is the one shown.
    expect((await queueStatus(t.p.ctx, { rate: def })).rate).toMatchObject({ count: 150, window_s: 10 });
  });

  it('says when every worker waits for its run window, and when it opens', async () => {
    const hhmm = (ms: number) => new Date(Date.now() + ms).toTimeString().slice(0, 5);
    // A window that opens in two hours: the worker starts but takes nothing.
    const window = `${hhmm(2 * 3_600_000)}-${hhmm(3 * 3_600_000)}`;
    await t.p.startWorker({ concurrency: '2', window });
    await t.p.enqueue(['one night job', 'another night job'], { batch: 'night' });
    const s = await until('the worker registered with its window', async () => {
      const st = await queueStatus(t.p.ctx, { rate });
      return st.workers.length > 0 && st.counts.waiting === 2 ? st : null;
    });
    expect(s.workers[0]!.window).toMatchObject({ text: window, open: false });
    expect(s.counts.active).toBe(0);
    expect(s.hints.join('\n')).toContain(
      `every worker is outside its run window (${window}); jobs are taken again at ${window.slice(0, 5)}`,
    );
    expect(formatStatus(s)).toMatch(
      new RegExp(`concurrency 2, outside its run window ${window} until ${window.slice(0, 5)}`),
    );
  });
});
