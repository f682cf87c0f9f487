import type { Logger } from 'pino';
import { settleWithin, within } from '../src/timeouts.js';
import type { Consumer } from './consumer.js';

export interface ShutdownOptions {
  consumer: Consumer;
  /** How long in-flight requests may take to finish. */
  graceMs: number;
  logger: Logger;
  /** Everything else to release once the consumer is stopped (monitors, registrations, connections). */
  release: () => Promise<void>;
}

/**
 * Stops taking jobs, lets in-flight ones finish within the grace period, then abandons the rest
 * (they stall and run again elsewhere, their request counted as possibly billed). BullMQ's close()
 * has no timeout of its own and hangs while Redis is down, so every step is raced.
 */
export async function shutdown(o: ShutdownOptions): Promise<void> {
  const closed = o.consumer.close().then(
    () => true,
    () => false,
  );
  if (!(await within(closed, o.graceMs, false))) {
    o.logger.warn(
      { graceMs: o.graceMs },
      'in-flight jobs did not finish within the grace period; they will run again elsewhere',
    );
    await settleWithin(o.consumer.close(true), 2000);
  }
  await o.release();
}
