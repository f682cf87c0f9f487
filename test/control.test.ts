import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { readManifest } from '../src/output/manifest.js';
import { buildReport } from '../src/ops/report.js';
import { startDashboard } from '../src/cli/commands/dashboard.js';
import { cliEnv, runCli } from './helpers/cli.js';
import { redisUrl } from './helpers/redis.js';
import { waitForBatch, usePipeline } from './helpers/pipeline.js';

/** retry, cancel, pause and resume as the operator types them (the CLI), against in-process workers. */
describe('operator control: retry, cancel, pause, resume, dashboard', () => {
  const t = usePipeline({ latencyMs: [1, 5] });
  /** Requests the fake received per prompt (generations only). */
  let asked: Map<string, number>;
  beforeEach(() => {
    asked = new Map();
  });

  const cli = (args: string[]) =>
    runCli(
      [...args, '--queue', 'q', '--out', t.tmp.dir],
      // The same API as the workers: a batch is (API, name).
      cliEnv({ NIGHTSHIFT_PREFIX: t.prefix, REDIS_URL: redisUrl(), STABILITY_API_HOST: t.mock.url }),
    );
  const records = async (batch = 'b') => (await readManifest(join(t.tmp.dir, batch, 'manifest.jsonl'))).records;
  const count = (prompt: string) => (ctx: { prompt: string }) => {
    if (ctx.prompt) asked.set(ctx.prompt, (asked.get(ctx.prompt) ?? 0) + 1);
    return ctx.prompt.includes(prompt) ? { status: 422, name: 'invalid_language', message: 'English only' } : undefined;
  };

  it('retry --class re-runs only the failures of that class', async () => {
    t.mock.setFault(count('bad shape'));
    await t.p.enqueue(['a bad shape one', 'a bad shape two', 'a forbidden thing', 'a good one']);
    await t.p.startWorker();
    await waitForBatch(t.p);
    const before = Object.fromEntries((await records()).map((r) => [r.prompt, r.error?.class ?? r.status]));
    expect(before).toEqual({
      'a bad shape one': 'invalid_request',
      'a bad shape two': 'invalid_request',
      'a forbidden thing': 'moderated',
      'a good one': 'succeeded',
    });

    t.mock.setFault(count('no such prompt')); // the API now accepts the shapes
    const res = await cli(['retry', '--batch', 'b', '--class', 'invalid_request']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('2 failed jobs put back');
    const counts = await waitForBatch(t.p);
    expect(counts).toMatchObject({ succeeded: 3, failed: 1, pending: 0 });
    expect(Object.fromEntries(asked)).toEqual({
      'a bad shape one': 2,
      'a bad shape two': 2,
      'a forbidden thing': 1,
      'a good one': 1,
    });
    const after = Object.fromEntries((await records()).map((r) => [r.prompt, r.status]));
    expect(after).toEqual({
      'a bad shape one': 'succeeded',
      'a bad shape two': 'succeeded',
      'a forbidden thing': 'failed',
      'a good one': 'succeeded',
    });
  });

  it('cancel removes the waiting jobs, and the report shows them as cancelled', async () => {
    await t.p.enqueue(Array.from({ length: 12 }, (_, i) => `a harbour at night, number ${i}`));
    const res = await cli(['cancel', '--batch', 'b']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('cancelled 12 jobs of batch b');
    expect(await t.p.ctx.queue.getWaitingCount()).toBe(0);
    expect(await t.p.ctx.state.counts('b')).toMatchObject({ total: 12, cancelled: 12, pending: 0 });
    const report = await buildReport(t.tmp.dir, { api: t.p.config.api.identity, batch: 'b' });
    expect(report).toMatchObject({ jobs: 12, failed: 12, byClass: { cancelled: 12 } });
    expect(await readFile(report.gallery, 'utf8')).toContain('cancelled (12)');
    expect(t.mock.stats.total).toBe(0);
  });

  it('pause stops every worker taking jobs; resume lets both finish the batch', async () => {
    await t.p.startWorker({ concurrency: '2' });
    await t.p.startWorker({ concurrency: '2' });
    const paused = await cli(['pause']);
    expect(paused.code, paused.stderr).toBe(0);
    expect(await t.p.ctx.control.isPaused()).toBe(true);
    await t.p.enqueue(Array.from({ length: 20 }, (_, i) => `a paused lighthouse ${i}`));
    // Both workers are polling a paused queue: nothing is taken.
    await new Promise((r) => setTimeout(r, 500));
    expect(t.mock.stats.total).toBe(0);
    expect(await t.p.ctx.queue.getWaitingCount()).toBe(20);

    const resumed = await cli(['resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await t.p.ctx.control.isPaused()).toBe(false);
    expect(await waitForBatch(t.p)).toMatchObject({ succeeded: 20, pending: 0 });
    expect(t.mock.stats.generations.size).toBe(20);
    for (const n of t.mock.stats.generations.values()) expect(n).toBe(1);
  });

  it('dashboard serves bull-board for the queue, read-only by default', async () => {
    await t.p.enqueue(['a watched kettle']);
    const board = await startDashboard({ queue: t.p.ctx.queue, port: 0, host: '127.0.0.1', allowActions: false });
    try {
      expect(board.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await fetch(board.url);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<title>nightshift<\/title>|nightshift/);
      const api = await fetch(new URL('api/queues', board.url));
      expect(api.status).toBe(200);
      const body = (await api.json()) as { queues: Array<{ name: string; readOnlyMode: boolean }> };
      expect(body.queues.map((q) => [q.name, q.readOnlyMode])).toEqual([['q', true]]);
    } finally {
      await board.close();
    }
  });
});
