import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMockApi, type MockApi } from '../src/mock-api/server.js';
import { loadConfig } from '../src/config.js';
import { openQueueContext, type QueueContext } from '../src/ops/context.js';
import { enqueuePromptFiles } from '../src/queue/enqueue.js';
import { readManifest } from '../src/output/manifest.js';
import { cliEnv, startCli } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';
import { randomPrefix } from './helpers/redis.js';
import { startRedisServer, type TestRedisServer } from './helpers/redis-server.js';
import { silent } from './helpers/pipeline.js';
import { sleep, until } from './helpers/wait.js';

/** Longer than ioredis' reconnect steps (100 ms × n, at most 2 s) and BullMQ's drainDelay + 1 s. */
const OUTAGE_MS = 3500;

describe('Redis goes away mid-batch and comes back on the same port with its data', () => {
  let server: TestRedisServer;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let mock: MockApi;
  let ctx: QueueContext | undefined;
  const prefix = randomPrefix();
  const children: Array<ReturnType<typeof startCli>> = [];

  beforeEach(async () => {
    server = await startRedisServer();
    tmp = await tempDir();
    mock = await startMockApi({ latencyMs: [50, 150] });
  });
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.length = 0;
    await ctx?.close();
    ctx = undefined;
    await mock.close();
    await server.destroy();
    await tmp.cleanup();
  });

  const prompts = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag} ${i}, a harbour at dawn`);
  const env = () =>
    cliEnv({
      NIGHTSHIFT_PREFIX: prefix,
      REDIS_URL: server.url,
      STABILITY_API_HOST: mock.url,
      STABILITY_API_KEY: 'sk-test',
    });
  const lockFlags = ['--lock-duration', '1', '--stalled-interval', '1', '--rate', '1000/1', '--backoff', '0.05'];

  let restartedAt = 0;
  /** Stops Redis once `saved()` passes `after`, keeps it down for OUTAGE_MS, starts it again. */
  async function outage(saved: () => number, after: number, jobs: number): Promise<void> {
    await until(`${after} images before the outage`, () => saved() >= after);
    await server.stop('SIGTERM');
    const billedAtStop = mock.stats.generations.size;
    expect(billedAtStop).toBeLessThan(jobs); // the outage is mid-batch
    await sleep(OUTAGE_MS);
    await server.start();
    restartedAt = Date.now();
  }

  function expectBilledOnceEach(jobs: number) {
    const billed = [...mock.stats.generations.values()];
    expect(billed.length).toBe(jobs);
    return billed.reduce((a, b) => a + b, 0) - billed.length;
  }

  it('a `work --exit-when-idle` process reconnects by itself and finishes the batch', async () => {
    const JOBS = 100;
    const config = loadConfig(
      { redis: server.url, queue: 'q', out: tmp.dir, prefix },
      { STABILITY_API_HOST: mock.url, STABILITY_API_KEY: 'sk-test' },
    );
    ctx = await openQueueContext(config, server.url);
    const c = ctx;
    const file = join(tmp.dir, 'p.txt');
    await writeFile(file, `${prompts(JOBS, 'restart').join('\n')}\n`);
    await enqueuePromptFiles(
      { files: [file], defaults: {}, maxJobs: 10_000, dryRun: false, force: false, batch: 'b' },
      {
        logger: silent,
        api: config.api.identity,
        out: config.out,
        connect: async () => ({
          redis: c.redis,
          queue: c.queue,
          queuePrefix: prefix,
          queueName: 'q',
          state: c.state,
          ledger: c.ledger,
        }),
      },
    );

    const w = startCli(
      ['work', '--queue', 'q', '--out', tmp.dir, '--concurrency', '4', '--exit-when-idle', ...lockFlags],
      env(),
    );
    children.push(w);
    let log = '';
    w.stdout!.on('data', (d) => (log += d));
    const saved = () => log.split('"image saved"').length - 1;
    await outage(saved, 20, JOBS);
    expect(w.exitCode).toBe(null); // it waited for Redis rather than giving up

    const r = await w.result;
    const doneAfter = Date.now() - restartedAt;
    expect(r.code, r.stderr).toBe(0);
    const counts = await ctx.state.counts('b');
    expect(counts.succeeded).toBe(JOBS);
    const { records } = await readManifest(join(tmp.dir, 'b', 'manifest.jsonl'));
    expect(records.filter((x) => x.status === 'succeeded')).toHaveLength(JOBS);
    const images = (await readdir(join(tmp.dir, 'b', 'images'))).filter(
      (f) => f.endsWith('.png') && !f.startsWith('.'),
    );
    expect(images).toHaveLength(JOBS);
    const extra = expectBilledOnceEach(JOBS);
    // Requests answered during the outage are written to disk; a rerun finds them there.
    expect(extra).toBeLessThanOrEqual(4);
    console.log(
      `[redis-restart] work: ${extra} extra billed after a ${OUTAGE_MS} ms outage; exited ${doneAfter} ms after the restart`,
    );
  });

  it('`run` rides out the outage too and exits 0 with the whole batch', async () => {
    const JOBS = 60;
    const file = join(tmp.dir, 'p.txt');
    await writeFile(file, `${prompts(JOBS, 'run restart').join('\n')}\n`);
    const out = join(tmp.dir, 'out');
    const run = startCli(['run', file, '--queue', 'q', '--out', out, '--concurrency', '4', ...lockFlags], env());
    children.push(run);
    await outage(() => mock.stats.generations.size, 15, JOBS);
    const r = await run.result;
    const doneAfter = Date.now() - restartedAt;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${JOBS} succeeded, 0 filtered, 0 failed`);
    const { records } = await readManifest(join(out, 'p', 'manifest.jsonl'));
    expect(records).toHaveLength(JOBS);
    const extra = expectBilledOnceEach(JOBS);
    expect(extra).toBeLessThanOrEqual(4);
    console.log(
      `[redis-restart] run: ${extra} extra billed after a ${OUTAGE_MS} ms outage; exited ${doneAfter} ms after the restart`,
    );
  });
});
