import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { readManifest } from '../src/output/manifest.js';
import { cliEnv, startCli, tempDir } from './helpers/cli.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';
import { pipeline, waitForBatch, type Pipeline } from './helpers/pipeline.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('signals: SIGTERM finishes in-flight work, a second signal exits at once', () => {
  const redis = newRedis();
  let prefix: string;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  let p: Pipeline;
  const children: Array<ReturnType<typeof startCli>> = [];

  beforeEach(async () => {
    prefix = randomPrefix();
    tmp = await tempDir();
    mock = await startMockApi({ latencyMs: 500 });
    p = await pipeline({ prefix, out: tmp.dir, apiUrl: mock.url });
  });
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.length = 0;
    await p.close();
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });

  const JOBS = 24;
  const answered = () => [...mock.stats.byStatus.values()].reduce((a, b) => a + b, 0);
  const inFlight = () => mock.stats.total - answered();

  function work(extra: string[] = []) {
    const env = cliEnv({ NIGHTSHIFT_PREFIX: prefix, REDIS_URL: redisUrl(), STABILITY_API_HOST: mock.url, STABILITY_API_KEY: 'sk-test' });
    const c = startCli([
      'work', '--queue', 'q', '--out', tmp.dir, '--concurrency', '4', '--rate', '1000/1',
      '--lock-duration', '1', '--stalled-interval', '1', '--backoff', '0.05', ...extra,
    ], env);
    children.push(c);
    let log = '';
    c.stdout!.on('data', (d) => (log += d));
    return Object.assign(c, { log: () => log });
  }

  async function finishWithSecondWorker() {
    const rest = work(['--exit-when-idle']);
    const r = await rest.result;
    expect(r.code, r.stderr).toBe(0);
    const counts = await waitForBatch(p, 'b', 5_000);
    expect(counts.succeeded).toBe(JOBS);
    const { records } = await readManifest(join(tmp.dir, 'b', 'manifest.jsonl'));
    expect(records.filter((x) => x.status === 'succeeded')).toHaveLength(JOBS);
  }

  it('SIGTERM: in-flight requests finish and are recorded, exit 130; a later worker does the rest, nothing billed twice', async () => {
    await p.enqueue(Array.from({ length: JOBS }, (_, i) => `signal prompt ${i}, an owl`));
    const w = work(['--grace', '20']);
    await until('the worker mid-batch with requests in flight', () => w.log().includes('"image saved"') && inFlight() > 0);
    w.kill('SIGTERM');
    const inFlightAtSignal = inFlight();
    const r = await w.result;
    expect(r.code, r.stderr).toBe(130);
    expect(r.signal).toBe(null);
    expect(w.log()).toContain('"signal":"SIGTERM"');
    // Within the grace period: nothing had to be abandoned.
    expect(w.log()).not.toContain('did not finish within the grace period');
    expect(inFlight()).toBe(0);

    // Every request the API answered (and billed) before the exit has its image and its manifest line.
    const billedBeforeExit = mock.stats.generations.size;
    expect(billedBeforeExit).toBeLessThan(JOBS);
    const { records } = await readManifest(join(tmp.dir, 'b', 'manifest.jsonl'));
    expect(records).toHaveLength(billedBeforeExit);
    const images = (await readdir(join(tmp.dir, 'b', 'images'))).filter((f) => f.endsWith('.png') && !f.startsWith('.'));
    expect(images).toHaveLength(billedBeforeExit);
    expect((await p.ctx.state.counts('b')).succeeded).toBe(billedBeforeExit);

    await finishWithSecondWorker();
    expect(mock.stats.generations.size).toBe(JOBS);
    for (const n of mock.stats.generations.values()) expect(n).toBe(1);
    console.log(`[signals] SIGTERM with ${inFlightAtSignal} requests in flight: all finished and recorded, none billed twice`);
  });

  it('a second signal exits at once, without waiting for the requests in flight', async () => {
    await p.enqueue(Array.from({ length: JOBS }, (_, i) => `second signal prompt ${i}, a fox`));
    // Requests that would take far longer than this test: only an immediate exit can end the worker.
    mock.setFault(() => ({ kind: 'delay', ms: 60_000 }));
    const w = work(['--grace', '60']);
    await until('4 requests in flight', () => inFlight() >= 4);
    w.kill('SIGTERM');
    await until('the first signal logged', () => w.log().includes('"signal":"SIGTERM"'));
    w.kill('SIGINT');
    const r = await w.result;
    expect(r.code, r.stderr).toBe(130);
    expect(w.log()).toContain('exiting now');
    expect(answered()).toBe(0);

    // The interrupted jobs come back (after the in-flight claim lapses) and the batch completes.
    mock.setFault(undefined);
    await finishWithSecondWorker();
  });
});
