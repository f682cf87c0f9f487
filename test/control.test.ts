import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { readManifest } from '../src/output/manifest.js';
import { buildReport } from '../src/report.js';
import { startDashboard } from '../src/cli/commands/dashboard.js';
import { cliEnv, runCli, tempDir } from './helpers/cli.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';
import { pipeline, waitForBatch, type Pipeline } from './helpers/pipeline.js';

/** retry, cancel, pause and resume as the operator types them (the CLI), against in-process workers. */
describe('operator control: retry, cancel, pause, resume, dashboard', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  let p: Pipeline;
  /** Requests the fake received per prompt (generations only). */
  let asked: Map<string, number>;

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    asked = new Map();
    mock = await startMockApi({ latencyMs: [1, 5] });
    p = await pipeline({ prefix, out: tmp.dir, apiUrl: mock.url });
  });
  afterEach(async () => {
    await p.close();
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  const cli = (args: string[]) => runCli([...args, '--queue', 'q', '--out', tmp.dir], cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl() }));
  const records = async (batch = 'b') => (await readManifest(join(tmp.dir, batch, 'manifest.jsonl'))).records;
  const count = (prompt: string) => (ctx: { prompt: string }) => {
    if (ctx.prompt) asked.set(ctx.prompt, (asked.get(ctx.prompt) ?? 0) + 1);
    return ctx.prompt.includes(prompt) ? { status: 422, name: 'invalid_language', message: 'English only' } : undefined;
  };

  it('retry --class re-runs only the failures of that class', async () => {
    mock.setFault(count('bad shape'));
    await p.enqueue(['a bad shape one', 'a bad shape two', 'a forbidden thing', 'a good one']);
    await p.startWorker();
    await waitForBatch(p);
    const before = Object.fromEntries((await records()).map((r) => [r.prompt, r.error?.class ?? r.status]));
    expect(before).toEqual({ 'a bad shape one': 'invalid_request', 'a bad shape two': 'invalid_request', 'a forbidden thing': 'moderated', 'a good one': 'succeeded' });

    mock.setFault(count('no such prompt')); // the API now accepts the shapes
    const res = await cli(['retry', '--batch', 'b', '--class', 'invalid_request']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('2 failed jobs put back');
    const counts = await waitForBatch(p);
    expect(counts).toMatchObject({ succeeded: 3, failed: 1, pending: 0 });
    expect(Object.fromEntries(asked)).toEqual({ 'a bad shape one': 2, 'a bad shape two': 2, 'a forbidden thing': 1, 'a good one': 1 });
    const after = Object.fromEntries((await records()).map((r) => [r.prompt, r.status]));
    expect(after).toEqual({ 'a bad shape one': 'succeeded', 'a bad shape two': 'succeeded', 'a forbidden thing': 'failed', 'a good one': 'succeeded' });
  });

  it('cancel removes the waiting jobs, and the report shows them as cancelled', async () => {
    await p.enqueue(Array.from({ length: 12 }, (_, i) => `a harbour at night, number ${i}`));
    const res = await cli(['cancel', '--batch', 'b']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('cancelled 12 jobs of batch b');
    expect(await p.ctx.queue.getWaitingCount()).toBe(0);
    expect(await p.ctx.state.counts('b')).toMatchObject({ total: 12, cancelled: 12, pending: 0 });
    const report = await buildReport(tmp.dir, 'b');
    expect(report).toMatchObject({ jobs: 12, failed: 12, byClass: { cancelled: 12 } });
    expect(await readFile(report.gallery, 'utf8')).toContain('cancelled (12)');
    expect(mock.stats.total).toBe(0);
  });

  it('pause stops every worker taking jobs; resume lets both finish the batch', async () => {
    await p.startWorker({ concurrency: '2' });
    await p.startWorker({ concurrency: '2' });
    const paused = await cli(['pause']);
    expect(paused.code, paused.stderr).toBe(0);
    expect(await p.ctx.control.isPaused()).toBe(true);
    await p.enqueue(Array.from({ length: 20 }, (_, i) => `a paused lighthouse ${i}`));
    // Both workers are polling a paused queue: nothing is taken.
    await new Promise((r) => setTimeout(r, 500));
    expect(mock.stats.total).toBe(0);
    expect(await p.ctx.queue.getWaitingCount()).toBe(20);

    const resumed = await cli(['resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await p.ctx.control.isPaused()).toBe(false);
    expect(await waitForBatch(p)).toMatchObject({ succeeded: 20, pending: 0 });
    expect(mock.stats.generations.size).toBe(20);
    for (const n of mock.stats.generations.values()) expect(n).toBe(1);
  });

  it('dashboard serves bull-board for the queue, read-only by default', async () => {
    await p.enqueue(['a watched kettle']);
    const board = await startDashboard({ queue: p.ctx.queue, port: 0, host: '127.0.0.1', allowActions: false });
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
