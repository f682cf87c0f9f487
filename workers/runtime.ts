import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { Config, WorkerConfig } from '../src/config.js';
import type { ApiError } from '../src/errors.js';
import type { JobData } from '../src/queue/job-data.js';
import { createRedis, checkRedisSettings } from '../src/redis/connect.js';
import { createQueue, nsKey } from '../src/queue/queue.js';
import { createControl } from '../src/queue/pause.js';
import { createRateLimiter, apiKeyId } from '../src/billing/rate-limiter.js';
import { createLedger } from '../src/billing/ledger.js';
import { createBatchState } from '../src/queue/batch-state.js';
import { createCircuitBreaker } from '../src/billing/breaker.js';
import { createInflight } from '../src/billing/inflight.js';
import { createStash } from '../src/billing/stash.js';
import { batchDir } from '../src/output/paths.js';
import { recordFinal } from '../src/output/finalize.js';
import { backoffDelay } from '../src/queue/backoff.js';
import { checkWritable } from '../src/output/writable.js';
import { createGenerateProcessor } from '../jobs/generate-image.js';
import type { StabilityClient } from '../src/stability/client.js';

export interface WorkerHandle {
  /** Resolves with the exit code once the worker has stopped. */
  done: Promise<number>;
  /** Graceful stop: no new jobs, in-flight ones finish within the grace period. */
  stop(exitCode: number): Promise<void>;
  /** Immediate stop (second signal). */
  kill(exitCode: number): void;
}

export interface StartWorkerOptions {
  config: Config;
  wc: WorkerConfig;
  redisUrl: string;
  logger: Logger;
  client: StabilityClient;
  /** The API key the limiter is keyed by (a hash of it; `mock` for the mock API). */
  apiKey: string;
  now?: () => number;
}

export async function startWorker(opts: StartWorkerOptions): Promise<WorkerHandle> {
  const { config, wc, logger } = opts;
  const now = opts.now ?? Date.now;
  await checkWritable(config.out);
  // Our scripts' connection pipelines what the many concurrent jobs send in the same tick:
  // far fewer socket writes per job.
  const redis = createRedis(opts.redisUrl, { enableAutoPipelining: true });
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error (reconnecting)'));
  await redis.connect();
  await checkRedisSettings(redis, logger);
  const queue = createQueue(createRedis(opts.redisUrl, { lazyConnect: false }), config.queue, config.prefix);
  queue.on('error', (err) => logger.debug({ err: err.message }, 'queue connection error'));
  const control = createControl({ redis, queue, prefix: config.prefix, queueName: config.queue });
  const limiter = createRateLimiter({
    redis,
    prefix: config.prefix,
    keyId: apiKeyId(opts.apiKey),
    count: wc.rate.count,
    windowMs: wc.rate.windowMs,
    ...(wc.rateMarginMs !== null ? { marginMs: wc.rateMarginMs } : {}),
  });
  const ledger = createLedger({ redis, prefix: config.prefix });
  const state = createBatchState({ redis, prefix: config.prefix });
  const breaker = createCircuitBreaker({ redis, prefix: config.prefix, threshold: wc.breakerThreshold });
  const inflightTtl = Math.max(3000, Math.min(30_000, wc.lockDurationMs));
  const workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const dirOf = (batch: string) => batchDir(config.out, batch);

  let exitCode = 0;
  let stopping: Promise<void> | null = null;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const processor = createGenerateProcessor({
    logger,
    client: opts.client,
    limiter,
    ledger,
    state,
    breaker,
    inflight: createInflight({ redis, prefix: config.prefix, queue: config.queue, ttlMs: inflightTtl }),
    stash: createStash({ redis, prefix: config.prefix, queue: config.queue }),
    api: config.api.identity,
    workerId,
    batchDir: dirOf,
    now,
    lockoutMs: wc.lockoutMs,
    timeoutRetries: wc.timeoutRetries,
    breakerThreshold: wc.breakerThreshold,
    inflightRenewMs: Math.floor(inflightTtl / 3),
    storageRetryMs: Math.max(100, Math.min(5000, wc.backoffMs)),
    pauseQueue: async (reason, message) => {
      logger.error({ reason }, `pausing queue ${config.queue}: ${message}`);
      await control.pause(reason, message);
    },
    onStop: (err: ApiError) => {
      const what =
        err.errorClass === 'auth'
          ? 'the API rejected the key (401): check STABILITY_API_KEY'
          : 'the account is out of credits (402): buy credits at platform.stability.ai';
      logger.fatal(`${what}; queue ${config.queue} is paused, no job was failed. Fix it, then \`nightshift resume\`.`);
      void handle.stop(4);
    },
  });

  const makeWorker = () => {
    const w = new Worker<JobData>(config.queue, processor, {
      connection: createRedis(opts.redisUrl),
      prefix: config.prefix,
      concurrency: wc.concurrency,
      lockDuration: wc.lockDurationMs,
      stalledInterval: wc.stalledIntervalMs,
      maxStalledCount: wc.maxStalledCount,
      settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, wc.backoffMs, Math.random) },
      autorun: true,
    });
    w.on('error', (err) => logger.warn({ err: err.message }, 'worker error'));
    w.on('failed', (job, err) => void onFailed(job, err));
    w.on('completed', () => (lastProgress = now()));
    w.on('active', () => (lastProgress = now()));
    return w;
  };
  let lastProgress = now();
  let worker = makeWorker();

  /** A job failed without our processor recording it (a stall beyond the limit): record it now. */
  async function onFailed(job: Job<JobData> | undefined, err: Error) {
    lastProgress = now();
    if (!job?.id || !/stalled|lock/i.test(err.message)) return;
    try {
      if ((await job.getState()) !== 'failed') return;
      await recordFinal({ state, batchDir: dirOf, now }, job, job.data, {
        status: 'failed',
        file: null,
        bytes: null,
        sha256: null,
        seed: job.data.seed,
        credits: 0,
        startedAt: job.processedOn ?? null,
        error: { class: 'stalled', status: null, name: 'stalled', message: err.message },
      });
    } catch (e) {
      logger.error({ err: (e as Error).message, jobId: job.id }, 'could not record a stalled job');
    }
  }

  const timers: NodeJS.Timeout[] = [];
  // Registration lets `status` tell whether concurrency or the rate limit bounds throughput.
  const workersKey = nsKey(config.prefix, config.queue, 'workers');
  const heartbeat = () =>
    redis.hset(workersKey, workerId, JSON.stringify({ concurrency: wc.concurrency, heartbeat: now() })).catch(() => 0);
  await heartbeat();
  timers.push(setInterval(() => void heartbeat(), 10_000));
  // Watchdog: jobs wait, the queue is not paused, yet nothing has moved for watchdogMs.
  timers.push(setInterval(() => void watchdog(), Math.max(1000, Math.floor(wc.watchdogMs / 4))));
  async function watchdog() {
    if (stopping || now() - lastProgress < wc.watchdogMs) return;
    try {
      const counts = await queue.getJobCounts('wait', 'active');
      if ((counts.wait ?? 0) > 0 && (counts.active ?? 0) === 0 && !(await queue.isPaused())) {
        logger.error(
          { idleMs: now() - lastProgress },
          'watchdog: jobs are waiting but nothing progresses; restarting consumption',
        );
        const old = worker;
        worker = makeWorker();
        lastProgress = now();
        await old.close(true).catch(() => {});
      }
    } catch {
      // Redis unreachable: the reconnect logic owns this; check again next tick.
    }
  }

  // Circuit breaker probe: one worker per interval asks the API whether it is back.
  timers.push(setInterval(() => void probe(), Math.max(1000, Math.floor(wc.probeIntervalMs / 2))));
  async function probe() {
    try {
      const paused = await control.pausedBy();
      if (paused?.reason !== 'circuit' || !(await breaker.claimProbe(wc.probeIntervalMs))) return;
      await limiter.acquire();
      await opts.client.listEngines();
      logger.info('circuit breaker: the API answers again; resuming the queue');
      await breaker.close();
      await control.resume();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'circuit breaker probe failed; the queue stays paused');
    }
  }

  if (wc.exitWhenIdle) timers.push(setInterval(() => void idleCheck(), 1000));
  async function idleCheck() {
    if (stopping) return;
    try {
      const paused = await control.pausedBy();
      const isPaused = await queue.isPaused();
      const c = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
      const active = c.active ?? 0;
      if (active > 0) return;
      if (isPaused) {
        const code = paused && (paused.reason === 'auth' || paused.reason === 'payment') ? 4 : 0;
        logger.info({ pausedBy: paused?.reason ?? 'manual' }, 'queue is paused and nothing is active; exiting');
        void handle.stop(code);
      } else if ((c.wait ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) === 0) {
        logger.info('queue is empty; exiting');
        void handle.stop(0);
      }
    } catch {
      // Redis away: keep waiting.
    }
  }

  const handle: WorkerHandle = {
    done,
    stop(code: number) {
      if (code > exitCode) exitCode = code;
      if (stopping) return stopping;
      stopping = (async () => {
        for (const t of timers) clearInterval(t);
        // close() has no timeout of its own and hangs while Redis is down: race it.
        const closed = worker.close().then(
          () => true,
          () => false,
        );
        const timedOut = new Promise<boolean>((r) => setTimeout(() => r(false), wc.graceMs).unref());
        if (!(await Promise.race([closed, timedOut]))) {
          logger.warn(
            { graceMs: wc.graceMs },
            'in-flight jobs did not finish within the grace period; they will run again elsewhere',
          );
          await Promise.race([worker.close(true).catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
        }
        await Promise.race([queue.close().catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]);
        await Promise.race([
          redis.hdel(workersKey, workerId).catch(() => 0),
          new Promise((r) => setTimeout(r, 1000).unref()),
        ]);
        redis.disconnect();
        resolveDone(exitCode);
      })();
      return stopping;
    },
    kill(code: number) {
      exitCode = code;
      resolveDone(code);
    },
  };
  logger.info(
    {
      queue: config.queue,
      concurrency: wc.concurrency,
      rate: `${wc.rate.count}/${wc.rate.windowMs / 1000}s`,
      api: config.api.identity,
    },
    'worker started',
  );
  return handle;
}
