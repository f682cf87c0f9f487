import { join } from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { settleWithin } from '../timeouts.js';
import type { Config } from '../config.js';
import type { JobData } from '../queue/job-data.js';
import {
  connectRedis,
  createRedis,
  redactRedisUrl,
  redisAnswers,
  startPrivateRedis,
  type PrivateRedis,
} from '../redis/connect.js';
import { createQueue } from '../queue/queue.js';
import { queuePrefix } from '../redis/keys.js';
import { createBatchState, type BatchState } from '../queue/batch-state.js';
import { createLedger, type Ledger } from '../billing/ledger.js';
import { createControl, type Control } from '../queue/pause.js';
import { createWorkerRegistry, type WorkerRegistry } from '../queue/worker-registry.js';

/** One queue and the state of the batches of one API (`config.api.identity`), as the commands see them. */
export interface QueueContext {
  redisUrl: string;
  redis: Redis;
  /** The prefix of what several queues share: batches, ledger, claims, limiter, breaker. */
  prefix: string;
  /** The prefix of this queue's own keys, BullMQ's and ours (its own hash tag on a cluster). */
  queuePrefix: string;
  queueName: string;
  /** `mock` or the API host: whose batches `state` and `ledger` hold. */
  api: string;
  queue: Queue<JobData>;
  state: BatchState;
  ledger: Ledger;
  control: Control;
  workers: WorkerRegistry;
  close(): Promise<void>;
}

export async function openQueueContext(config: Config, redisUrl: string): Promise<QueueContext> {
  const redis = await connectRedis(redisUrl);
  const qconn = createRedis(redisUrl, { lazyConnect: false });
  qconn.on('error', () => {});
  const { prefix, queue: queueName } = config;
  const qp = queuePrefix(prefix, queueName, config.cluster);
  const queue = createQueue(qconn, queueName, qp);
  queue.on('error', () => {});
  const api = config.api.identity;
  return {
    redisUrl,
    redis,
    prefix,
    queuePrefix: qp,
    queueName,
    api,
    queue,
    state: createBatchState({ redis, prefix, api }),
    ledger: createLedger({ redis, prefix, api }),
    control: createControl({ redis, queue, prefix: qp, queueName }),
    workers: createWorkerRegistry({ redis, prefix: qp, queue: queueName }),
    async close() {
      await settleWithin(queue.close(), 2000);
      qconn.disconnect();
      redis.disconnect();
    },
  };
}

/** --redis / REDIS_URL, else 127.0.0.1:6379 (commands other than `run` need one of these). */
export function redisUrlOf(config: Config): string {
  return config.redisUrl ?? config.defaultRedisUrl;
}

/**
 * `run` may start its own Redis: the given URL, else 127.0.0.1:6379 if it answers, else a private
 * redis-server with its append-only file under the output folder (an interrupted run resumes).
 */
export async function resolveRunRedis(
  config: Config,
  logger: Logger,
): Promise<{ url: string; private: PrivateRedis | null }> {
  if (config.redisUrl) return { url: config.redisUrl, private: null };
  if (await redisAnswers(config.defaultRedisUrl)) return { url: config.defaultRedisUrl, private: null };
  logger.info(`no Redis answers at ${redactRedisUrl(config.defaultRedisUrl)}; starting a private redis-server`);
  const priv = await startPrivateRedis(join(config.out, '.redis'), logger);
  return { url: priv.url, private: priv };
}
