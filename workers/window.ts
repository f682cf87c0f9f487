import { formatDuration } from '../src/durations.js';
import type { Logger } from 'pino';
import { windowState, type RunWindow, type WindowState } from '../src/queue/window.js';
import type { Consumer } from './consumer.js';

export interface WindowOptions {
  consumer: Pick<Consumer, 'hold' | 'release'>;
  window: RunWindow;
  logger: Logger;
  now: () => number;
  /** Told each time the window opens or closes (for status and for `run --exit-at-window-end`). */
  onChange?: (state: WindowState) => void;
}

/** Longest wait between checks: a changed wall clock (suspend, NTP, DST) is noticed within it. */
const RECHECK_MS = 60_000;

/**
 * Outside the run window the worker takes no new job (requests in flight finish); inside it takes
 * jobs again, every night, by itself. Returns a function that stops watching (the consumer stays as
 * it is: a worker shutting down must not start taking jobs).
 */
export function startWindow(o: WindowOptions): () => void {
  let open: boolean | null = null;
  let timer: NodeJS.Timeout | null = null;
  const check = () => {
    const now = new Date(o.now());
    const s = windowState(o.window, now);
    if (s.open !== open) {
      open = s.open;
      const when = `${s.changesAt.toTimeString().slice(0, 5)} (in ${formatDuration(s.changesAt.getTime() - now.getTime())})`;
      if (s.open) {
        o.consumer.release();
        o.logger.info(
          { window: o.window.text, closesAt: s.changesAt.toISOString() },
          `run window open; taking jobs until ${when}`,
        );
      } else {
        o.consumer.hold();
        o.logger.info(
          { window: o.window.text, opensAt: s.changesAt.toISOString() },
          `outside the run window ${o.window.text}: taking no new jobs until ${when}`,
        );
      }
      o.onChange?.(s);
    }
    const wait = Math.min(RECHECK_MS, Math.max(50, s.changesAt.getTime() - o.now() + 10));
    timer = setTimeout(check, wait);
  };
  check();
  return () => {
    if (timer) clearTimeout(timer);
  };
}
