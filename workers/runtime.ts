/**
 * The worker process's composition root: builds every collaborator once (connections, limiter,
 * ledger, claims, stash, breaker), hands them to the job processor, and starts the monitors around
 * the BullMQ consumer (heartbeat, watchdog, breaker probe, idle exit), each a `start…(): stop`.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config, WorkerConfig } from '../src/config.js';
import type { JobData } from '../src/queue/job-data.js';
import { createRedis, checkRedisSettings } from '../src/redis/connect.js';
import { createQueue } from '../src/queue/queue.js';
import { queuePrefix } from '../src/redis/keys.js';
import { createWorkerRegistry } from '../src/queue/worker-registry.js';
import { createControl, type Control } from '../src/queue/pause.js';
import { createRateLimiter, apiKeyId, type RateLimiter } from '../src/billing/rate-limiter.js';
import { createBatchState } from '../src/queue/batch-state.js';
import { createCircuitBreaker } from '../src/billing/breaker.js';
import { createInflight } from '../src/billing/inflight.js';
import { createStash } from '../src/billing/stash.js';
import { createJobSteps } from '../src/billing/job-steps.js';
import { batchDir } from '../src/output/paths.js';
import { batchStore, openOutput } from '../src/output/storage/open.js';
import type { OutputRoot } from '../src/output/storage/types.js';
import { createThumbnailQueue, type ThumbnailQueue } from '../src/output/thumbnail-queue.js';
import type { StabilityClient } from '../src/stability/client.js';
import { createGenerateProcessor } from '../jobs/generate-image.js';
import type { ProcessorDeps, StopReason } from '../jobs/deps.js';
import { startConsumer } from './consumer.js';
import { startHeartbeat } from './heartbeat.js';
import { startIdleExit } from './idle-exit.js';
import { startProbe } from './probe.js';
import { shutdown } from './shutdown.js';
import { settleWithin } from '../src/timeouts.js';
import { recordStalledFailures } from './stalled.js';
import { startWatchdog } from './watchdog.js';
import { startWindow } from './window.js';
import { startInstruments } from './instruments.js';
import type { WindowState } from '../src/queue/window.js';

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
  /** Told each time the run window opens or closes. */
  onWindow?: (state: WindowState) => void;
}

/** The prefix of this worker's queue: its own hash tag on a cluster. */
const queuePrefixOf = (config: Config) => queuePrefix(config.prefix, config.queue, config.cluster);

interface Connections {
  /** Our scripts' connection; it pipelines what many concurrent jobs send in the same tick. */
  redis: Redis;
  queue: Queue<JobData>;
  control: Control;
}

async function openConnections(o: StartWorkerOptions): Promise<Connections> {
  const { config, logger } = o;
  const redis = createRedis(o.redisUrl, { enableAutoPipelining: true });
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error (reconnecting)'));
  await redis.connect();
  await checkRedisSettings(redis, logger);
  const qp = queuePrefixOf(config);
  const queue = createQueue(createRedis(o.redisUrl, { lazyConnect: false }), config.queue, qp);
  queue.on('error', (err) => logger.debug({ err: err.message }, 'queue connection error'));
  const control = createControl({ redis, queue, prefix: qp, queueName: config.queue });
  return { redis, queue, control };
}

function stopMessage(reason: StopReason, detail: string, queue: string): string {
  const what =
    reason === 'auth'
      ? 'the API rejected the key (401): check STABILITY_API_KEY'
      : reason === 'payment'
        ? 'the account is out of credits (402): buy credits at platform.stability.ai'
        : detail;
  return `${what}; queue ${queue} is paused, no job was failed. Fix it, then \`nightshift resume\`.`;
}

interface DepsContext {
  opts: StartWorkerOptions;
  redis: Redis;
  control: Control;
  limiter: ProcessorDeps['limiter'] & Pick<RateLimiter, 'slotRequest'>;
  state: ProcessorDeps['state'];
  breaker: ProcessorDeps['breaker'];
  workerId: string;
  now: () => number;
  output: OutputRoot;
  thumbnails: ThumbnailQueue;
  /** Stops this worker (a 401/402: exit 4). */
  stop: (exitCode: number) => void;
}

/** What the job processor is given: the shared collaborators and the settings it acts on. */
function processorDeps(c: DepsContext): ProcessorDeps {
  const { opts, redis, control, limiter, state, breaker, workerId, now, output } = c;
  const { config, wc, logger } = opts;
  const { prefix } = config;
  const api = config.api.identity;
  const inflightTtl = Math.max(3000, Math.min(30_000, wc.lockDurationMs));
  return {
    logger,
    client: opts.client,
    limiter,
    state,
    breaker,
    inflight: createInflight({ redis, prefix, api, ttlMs: inflightTtl }),
    steps: createJobSteps({ redis, prefix, api, claimTtlMs: inflightTtl, limiter }),
    stash: createStash({ redis, prefix, api }),
    batchDir: (batch) => batchDir(config.out, { api, batch }),
    storeFor: (batch) => batchStore(output, { api, batch }),
    now,
    thumbnails: c.thumbnails,
    pauseQueue: async (reason, message) => {
      logger.error({ reason }, `pausing queue ${config.queue}: ${message}`);
      await control.pause(reason, message);
    },
    onStop: (reason, message) => {
      logger.fatal(stopMessage(reason, message, config.queue));
      c.stop(4);
    },
    settings: {
      api,
      workerId,
      lockoutMs: wc.lockoutMs,
      timeoutRetries: wc.timeoutRetries,
      breakerThreshold: wc.breakerThreshold,
      inflightRenewMs: Math.floor(inflightTtl / 3),
      storageRetryMs: Math.max(100, Math.min(5000, wc.backoffMs)),
    },
  };
}

export async function startWorker(start: StartWorkerOptions): Promise<WorkerHandle> {
  const { config, wc, logger } = start;
  const now = start.now ?? Date.now;
  const output = openOutput(config);
  await output.checkWritable();
  const { redis, queue, control } = await openConnections(start);
  const api = config.api.identity;
  const keyId = apiKeyId(start.apiKey);
  const limiter = createRateLimiter({
    redis,
    prefix: config.prefix,
    keyId,
    count: wc.rate.count,
    windowMs: wc.rate.windowMs,
    ...(wc.rateMarginMs !== null ? { marginMs: wc.rateMarginMs } : {}),
  });
  const instruments = await startInstruments({ wc, client: start.client, limiter, queue, logger, now });
  const opts = { ...start, client: instruments.client };
  const state = createBatchState({ redis, prefix: config.prefix, api });
  const breaker = createCircuitBreaker({ redis, prefix: config.prefix, api, keyId, threshold: wc.breakerThreshold });
  const workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const qp = queuePrefixOf(config);

  let exitCode = 0;
  let stopping: Promise<void> | null = null;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const thumbnails = createThumbnailQueue({ logger });
  const deps = processorDeps({
    opts,
    thumbnails,
    redis,
    control,
    limiter: instruments.limiter,
    state,
    breaker,
    workerId,
    now,
    output,
    stop: (c) => void handle.stop(c),
  });
  const consumer = startConsumer({
    queueName: config.queue,
    prefix: qp,
    redisUrl: opts.redisUrl,
    wc,
    processor: instruments.processor(createGenerateProcessor(deps)),
    logger,
    now,
    onFailed: recordStalledFailures({ state, batchDir: deps.batchDir, storeFor: deps.storeFor, now, logger }),
    held: wc.window !== null,
  });
  instruments.bind(consumer);
  let windowNow: WindowState | null = null;
  const onWindow = (s: WindowState) => {
    windowNow = s;
    opts.onWindow?.(s);
  };
  // Before anything else watches the consumer: outside the window it takes not even one job.
  const stopWindow = wc.window ? startWindow({ consumer, window: wc.window, logger, now, onChange: onWindow }) : null;

  const unregister = await startHeartbeat({
    registry: createWorkerRegistry({ redis, prefix: qp, queue: config.queue }),
    workerId,
    // Its key's id lets `status` and `resume` find the key's lockout and breaker without the key.
    describe: () => ({
      ...instruments.concurrency(),
      api,
      key_id: keyId,
      rate: { count: wc.rate.count, window_ms: wc.rate.windowMs },
      ...(wc.window && windowNow
        ? { window: { text: wc.window.text, open: windowNow.open, changes_at: windowNow.changesAt.toISOString() } }
        : {}),
    }),
    now,
  });
  const monitors = [
    ...(stopWindow ? [stopWindow] : []),
    startWatchdog({ consumer, queue, logger, now, idleMs: wc.watchdogMs }),
    startProbe({ control, breaker, limiter, client: start.client, logger, intervalMs: wc.probeIntervalMs }),
    ...(wc.exitWhenIdle ? [startIdleExit({ queue, control, logger, onIdle: (code) => void handle.stop(code) })] : []),
  ];

  const release = async () => {
    // What is not made yet is left to the report: the end of a batch never waits for thumbnails.
    await settleWithin(thumbnails.stop(), 2000);
    await instruments.stop();
    await settleWithin(queue.close(), 2000);
    await settleWithin(unregister(), 1000);
    redis.disconnect();
  };
  const handle: WorkerHandle = {
    done,
    stop(code: number) {
      if (code > exitCode) exitCode = code;
      if (stopping) return stopping;
      for (const stopMonitor of monitors) stopMonitor();
      stopping = shutdown({ consumer, graceMs: wc.graceMs, logger, release }).then(() => resolveDone(exitCode));
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
      concurrency: wc.autoConcurrency ? `auto (max ${wc.maxConcurrency})` : wc.concurrency,
      rate: `${wc.rate.count}/${wc.rate.windowMs / 1000}s`,
      api: config.api.identity,
    },
    'worker started',
  );
  return handle;
}
