import type { Processor } from 'bullmq';
import type { Logger } from 'pino';
import type { RateLimiter } from '../src/billing/rate-limiter.js';
import type { JobData } from '../src/queue/job-data.js';
import type { StabilityClient } from '../src/stability/client.js';
import type { ConcurrencyController, ConcurrencyState } from './concurrency.js';

/**
 * Feeds the concurrency controller what the worker observes — each wait at the shared limiter,
 * each answer's latency and size, the slots busy — and applies its decision to the consumer once a
 * second. The processor itself is untouched: the observations come from wrapping what it is given.
 */
export interface AutoConcurrency {
  limiter<L extends Pick<RateLimiter, 'acquire' | 'waitFor'>>(limiter: L): L;
  client(client: StabilityClient): StabilityClient;
  processor(p: Processor<JobData>): Processor<JobData>;
  current(): ConcurrencyState;
  stop(): void;
}

export interface AutoConcurrencyOptions {
  controller: ConcurrencyController;
  /** Share of the key's rate-limit window in use, 0..1. */
  keyUtilization: () => Promise<number>;
  apply: (concurrency: number) => void;
  logger: Logger;
  now: () => number;
  everyMs?: number;
}

export function startAutoConcurrency(o: AutoConcurrencyOptions): AutoConcurrency {
  let busy = 0;
  let last = o.controller.current();
  o.apply(last.concurrency);
  const tick = async () => {
    const utilization = await o.keyUtilization().catch(() => 0);
    const s = o.controller.tick(busy, utilization);
    if (s.concurrency !== last.concurrency || s.bound !== last.bound) {
      o.logger.debug({ concurrency: s.concurrency, bound: s.bound, latencyMs: s.latencyMs }, 'concurrency adjusted');
      o.apply(s.concurrency);
    }
    last = s;
  };
  const timer = setInterval(() => void tick(), o.everyMs ?? 1000);
  return {
    limiter: (limiter) => ({
      ...limiter,
      async acquire(signal?: AbortSignal) {
        const t0 = o.now();
        await limiter.acquire(signal);
        o.controller.onGrant(o.now() - t0);
      },
      async waitFor(slot, signal?: AbortSignal) {
        const t0 = o.now();
        await limiter.waitFor(slot, signal);
        o.controller.onGrant(o.now() - t0);
      },
    }),
    client: (client) => ({
      ...client,
      async generate(req, signal) {
        const t0 = o.now();
        const res = await client.generate(req, signal);
        o.controller.onAnswer(o.now() - t0, res.bytes.length);
        return res;
      },
    }),
    processor: (p) => async (job, token, signal) => {
      busy++;
      try {
        return await p(job, token, signal);
      } finally {
        busy--;
      }
    },
    current: () => last,
    stop: () => clearInterval(timer),
  };
}
