import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, loadWorkerConfig, type WorkerFlags } from '../../src/config.js';
import { startWorker, type WorkerHandle } from '../../workers/runtime.js';
import { createStabilityClient, type StabilityClient } from '../../src/stability/client.js';
import { enqueuePromptFiles, type EnqueueSummary } from '../../src/queue/enqueue.js';
import { openQueueContext, type QueueContext } from '../../src/ops/context.js';
import type { GenerationDefaults } from '../../src/prompts/types.js';
import { afterAll, afterEach, beforeEach } from 'vitest';
import type { Redis } from 'ioredis';
import { startMockApi, type MockApi, type MockApiOptions } from '../../src/mock-api/server.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './redis.js';
import { tempDir } from './temp.js';

export const silent = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/** Fast settings for tests: short locks, no real backoff waits, a rate limit out of the way. */
export const FAST: WorkerFlags = {
  concurrency: '16',
  rate: '1000/1',
  lockout: '0.3',
  requestTimeout: '5',
  timeoutRetries: '1',
  lockDuration: '2',
  stalledInterval: '1',
  backoff: '0.01',
  grace: '5',
  probeInterval: '0.2',
  rateMargin: '0',
};

export interface Pipeline {
  ctx: QueueContext;
  config: ReturnType<typeof loadConfig>;
  enqueue(
    lines: string[],
    opts?: { defaults?: GenerationDefaults; batch?: string; maxCredits?: number; ext?: string; maxJobs?: number },
  ): Promise<EnqueueSummary>;
  startWorker(flags?: WorkerFlags, apiKey?: string): Promise<WorkerHandle & { client: StabilityClient }>;
  close(): Promise<void>;
}

/** A real queue on the real Redis (own prefix), real workers in this process, the fake API over HTTP. */
export async function pipeline(opts: {
  prefix: string;
  out: string;
  apiUrl: string;
  queue?: string;
}): Promise<Pipeline> {
  const config = loadConfig(
    { redis: redisUrl(), queue: opts.queue ?? 'q', out: opts.out, prefix: opts.prefix },
    {
      STABILITY_API_HOST: opts.apiUrl,
      STABILITY_API_KEY: 'sk-test',
    },
  );
  const ctx = await openQueueContext(config, redisUrl());
  const workers: Array<WorkerHandle & { client: StabilityClient }> = [];
  let fileNo = 0;
  return {
    ctx,
    config,
    async enqueue(lines, o = {}) {
      const file = join(opts.out, `prompts-${fileNo++}.${o.ext ?? 'txt'}`);
      await writeFile(file, `${lines.join('\n')}\n`);
      return enqueuePromptFiles(
        {
          files: [file],
          defaults: o.defaults ?? {},
          maxJobs: o.maxJobs ?? 10000,
          dryRun: false,
          force: false,
          batch: o.batch ?? 'b',
          ...(o.maxCredits !== undefined ? { maxCredits: o.maxCredits } : {}),
        },
        {
          logger: silent,
          api: config.api.identity,
          out: config.out,
          connect: async () => ctx,
        },
      );
    },
    async startWorker(flags = {}, apiKey = 'sk-test') {
      const wc = loadWorkerConfig({ ...FAST, ...flags }, {});
      const client = createStabilityClient({ baseUrl: opts.apiUrl, apiKey, requestTimeoutMs: wc.requestTimeoutMs });
      const h = await startWorker({ config, wc, redisUrl: redisUrl(), logger: silent, client, apiKey });
      const w = Object.assign(h, { client });
      workers.push(w);
      return w;
    },
    async close() {
      await Promise.all(
        workers.map(async (w) => {
          await w.stop(0);
          await w.client.close().catch(() => {});
        }),
      );
      await ctx.close();
    },
  };
}

/** Polls until the batch has no pending job (or the timeout passes). */
export async function waitForBatch(p: Pipeline, batch = 'b', timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const c = await p.ctx.state.counts(batch);
    if (c.pending === 0 && c.total > 0) return c;
    if (Date.now() > end) throw new Error(`batch ${batch} not finished: ${JSON.stringify(c)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface PipelineFixture {
  readonly redis: Redis;
  readonly prefix: string;
  readonly tmp: { dir: string; cleanup: () => Promise<void> };
  readonly mock: MockApi;
  readonly p: Pipeline;
}

/**
 * Per test: a fresh key prefix, a temp folder, the fake API and a pipeline on them; all cleaned up
 * after the test (the fake and the workers first, then the keys and the folder).
 */
export function usePipeline(mockOptions: MockApiOptions = { latencyMs: [1, 10] }): PipelineFixture {
  const redis = newRedis();
  let current: Omit<PipelineFixture, 'redis'> | null = null;
  beforeEach(async () => {
    const prefix = randomPrefix();
    const tmp = await tempDir();
    const mock = await startMockApi(mockOptions);
    const p = await pipeline({ prefix, out: tmp.dir, apiUrl: mock.url });
    current = { prefix, tmp, mock, p };
  });
  afterEach(async () => {
    if (!current) return;
    const { p, mock, prefix, tmp } = current;
    current = null;
    await p.close();
    await mock.close();
    await cleanupPrefix(redis, prefix);
    await tmp.cleanup();
  });
  afterAll(() => redis.disconnect());
  const get = () => {
    if (!current) throw new Error('usePipeline: only inside a test');
    return current;
  };
  return {
    redis,
    get prefix() {
      return get().prefix;
    },
    get tmp() {
      return get().tmp;
    },
    get mock() {
      return get().mock;
    },
    get p() {
      return get().p;
    },
  };
}
