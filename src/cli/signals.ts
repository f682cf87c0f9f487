import type { Logger } from 'pino';

/**
 * First SIGINT/SIGTERM/SIGHUP: stop taking jobs and let in-flight requests finish
 * (bounded by the grace period); a second one exits at once. Either way nothing is
 * lost: unfinished jobs come back to the queue and run again, not twice billed.
 */
export function onStopSignals(logger: Logger, graceful: () => void, immediate: () => void): () => void {
  let count = 0;
  const handler = (sig: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      logger.warn({ signal: sig }, 'stopping: no new jobs; in-flight requests may finish (signal again to exit now)');
      graceful();
    } else {
      logger.warn({ signal: sig }, 'exiting now');
      immediate();
    }
  };
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of sigs) process.on(s, handler);
  return () => {
    for (const s of sigs) process.off(s, handler);
  };
}

/** How long a command waits for a connection pool to close once its work is over. */
export const CLOSE_MS = 2000;
