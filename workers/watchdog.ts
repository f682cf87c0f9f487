import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { Consumer } from './consumer.js';

export interface WatchdogOptions {
  consumer: Consumer;
  queue: Queue;
  logger: Logger;
  now: () => number;
  /** How long jobs may wait with nothing moving before consumption is restarted. */
  idleMs: number;
}

/**
 * Restarts consumption when jobs wait, the queue is not paused, yet nothing has started or ended
 * for `idleMs`: a worker whose blocking connection wedged after a Redis outage looks alive but
 * takes nothing.
 */
export function startWatchdog(o: WatchdogOptions): () => void {
  let busy = false;
  const check = async () => {
    if (busy || o.consumer.isHeld() || o.now() - o.consumer.lastProgress() < o.idleMs) return;
    busy = true;
    try {
      const counts = await o.queue.getJobCounts('wait', 'active');
      if ((counts.wait ?? 0) > 0 && (counts.active ?? 0) === 0 && !(await o.queue.isPaused())) {
        o.logger.error(
          { idleMs: o.now() - o.consumer.lastProgress() },
          'watchdog: jobs are waiting but nothing progresses; restarting consumption',
        );
        await o.consumer.restart();
      }
    } catch {
      // Redis unreachable: reconnecting is the connection's job; check again next tick.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void check(), Math.max(1000, Math.floor(o.idleMs / 4)));
  return () => clearInterval(timer);
}
