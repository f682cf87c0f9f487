import { Queue } from 'bullmq';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../src/config.js';
import { startConsumer, type Consumer } from '../workers/consumer.js';
import { cleanupPrefix, newRedis, randomPrefix, redisUrl } from './helpers/redis.js';
import { until } from './helpers/wait.js';

describe('consumer', () => {
  const prefix = randomPrefix();
  const redis = newRedis();
  let consumer: Consumer | undefined;
  let queue: Queue | undefined;
  let open: () => void = () => {};
  afterEach(async () => {
    open();
    await consumer?.close(true);
    await queue?.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('a raised concurrency fills at once, without waiting for a busy job to end', async () => {
    queue = new Queue('wake', { connection: newRedis(), prefix });
    await queue.addBulk(Array.from({ length: 8 }, (_, i) => ({ name: 'generate', data: { i } })));
    const gate = new Promise<void>((resolve) => (open = resolve));
    let started = 0;
    consumer = startConsumer({
      queueName: 'wake',
      prefix,
      redisUrl: redisUrl(),
      wc: { ...loadWorkerConfig({}, {}), concurrency: 2 },
      // Every job holds its slot until the test ends: none finishes to wake BullMQ's loop.
      processor: async () => {
        started++;
        await gate;
      },
      logger: pino({ level: 'silent' }),
      now: Date.now,
      onFailed: () => {},
    });
    await until('two jobs started', () => started === 2);
    consumer.setConcurrency(5);
    await until('five jobs started while none ended', () => started === 5, 10_000);
    expect(started).toBe(5);
  });
});
