import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { Queue } from 'bullmq';
import { createQueue } from '../src/queue/queue.js';
import type { JobData } from '../src/queue/job-data.js';
import { startWatchdog } from '../workers/watchdog.js';
import type { Consumer } from '../workers/consumer.js';
import { cleanupPrefix, newRedis, randomPrefix } from './helpers/redis.js';
import { sleep } from './helpers/wait.js';

const silent = pino({ level: 'silent' });

describe('watchdog: restarts consumption when jobs wait and nothing moves', () => {
  const redis = newRedis();
  let prefix: string;
  let queue: Queue<JobData>;
  let conn: ReturnType<typeof newRedis>;
  beforeEach(() => {
    prefix = randomPrefix();
    conn = newRedis();
    queue = createQueue(conn, 'wd', prefix);
  });
  afterEach(async () => {
    await queue.close();
    conn.disconnect();
    await cleanupPrefix(redis, prefix);
  });

  /** A consumer whose last progress was `ageMs` ago on the injected clock. */
  function stuckConsumer(ageMs: number) {
    const now = 1_000_000;
    let restarts = 0;
    const consumer: Consumer = {
      lastProgress: () => now - ageMs,
      restart: async () => void restarts++,
      close: async () => {},
      hold: () => {},
      setConcurrency: () => {},
      release: () => {},
      isHeld: () => false,
    };
    return { consumer, now: () => now, restarts: () => restarts };
  }

  it('restarts a consumer that took nothing for the idle time while a job waits', async () => {
    await queue.add('generate', {} as JobData, { jobId: 'j1' });
    const c = stuckConsumer(5000);
    const stop = startWatchdog({ consumer: c.consumer, queue, logger: silent, now: c.now, idleMs: 4000 });
    await sleep(1300);
    stop();
    expect(c.restarts()).toBe(1);
  });

  it('leaves it alone when nothing waits, when the queue is paused, or when it moved recently', async () => {
    const idle = stuckConsumer(5000);
    const stops = [startWatchdog({ consumer: idle.consumer, queue, logger: silent, now: idle.now, idleMs: 4000 })];
    await sleep(1300);
    expect(idle.restarts()).toBe(0);
    await queue.add('generate', {} as JobData, { jobId: 'j2' });
    const fresh = stuckConsumer(100);
    stops.push(startWatchdog({ consumer: fresh.consumer, queue, logger: silent, now: fresh.now, idleMs: 4000 }));
    await queue.pause();
    const paused = stuckConsumer(5000);
    stops.push(startWatchdog({ consumer: paused.consumer, queue, logger: silent, now: paused.now, idleMs: 4000 }));
    await sleep(1300);
    for (const s of stops) s();
    expect([fresh.restarts(), paused.restarts()]).toEqual([0, 0]);
  });
});
