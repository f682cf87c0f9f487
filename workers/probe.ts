import type { Logger } from 'pino';
import type { CircuitBreaker } from '../src/billing/breaker.js';
import type { RateLimiter } from '../src/billing/rate-limiter.js';
import type { Control } from '../src/queue/pause.js';
import type { StabilityClient } from '../src/stability/client.js';

export interface ProbeOptions {
  control: Pick<Control, 'pausedBy' | 'resume'>;
  breaker: Pick<CircuitBreaker, 'claimProbe' | 'close'>;
  limiter: Pick<RateLimiter, 'acquire'>;
  client: Pick<StabilityClient, 'listEngines'>;
  logger: Logger;
  intervalMs: number;
}

/**
 * While the circuit breaker holds the queue paused, one worker per interval (across all of them)
 * asks the API whether it is back, and resumes the queue when it answers.
 */
export function startProbe(o: ProbeOptions): () => void {
  const probe = async () => {
    try {
      const paused = await o.control.pausedBy();
      if (paused?.reason !== 'circuit' || !(await o.breaker.claimProbe(o.intervalMs))) return;
      // The probe is a request like any other: it takes a slot of the shared rate limit.
      await o.limiter.acquire();
      await o.client.listEngines();
      o.logger.info('circuit breaker: the API answers again; resuming the queue');
      await o.breaker.close();
      await o.control.resume();
    } catch (err) {
      o.logger.warn({ err: (err as Error).message }, 'circuit breaker probe failed; the queue stays paused');
    }
  };
  const timer = setInterval(() => void probe(), Math.max(1000, Math.floor(o.intervalMs / 2)));
  return () => clearInterval(timer);
}
