import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { STOP_REASONS, type Control } from '../src/queue/pause.js';

export interface IdleExitOptions {
  queue: Queue;
  control: Pick<Control, 'pausedBy'>;
  logger: Logger;
  /** Called once nothing is active and nothing can be taken, with the exit code to use. */
  onIdle: (exitCode: number) => void;
}

/**
 * `--exit-when-idle`: exit once nothing is active and nothing can be taken — the queue is empty
 * (0), or paused (0, or 4 when a 401/402 or a retired engine paused it: a person must fix the key, the credits or the batch).
 */
export function startIdleExit(o: IdleExitOptions): () => void {
  const check = async () => {
    try {
      const paused = await o.control.pausedBy();
      const isPaused = await o.queue.isPaused();
      const c = await o.queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
      if ((c.active ?? 0) > 0) return;
      if (isPaused) {
        const code = paused && (STOP_REASONS as readonly string[]).includes(paused.reason) ? 4 : 0;
        o.logger.info({ pausedBy: paused?.reason ?? 'manual' }, 'queue is paused and nothing is active; exiting');
        o.onIdle(code);
      } else if ((c.wait ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) === 0) {
        o.logger.info('queue is empty; exiting');
        o.onIdle(0);
      }
    } catch {
      // Redis away: keep waiting.
    }
  };
  const timer = setInterval(() => void check(), 1000);
  return () => clearInterval(timer);
}
