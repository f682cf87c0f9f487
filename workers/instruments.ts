import { totalmem } from 'node:os';
import type { Processor, Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { WorkerConfig } from '../src/config.js';
import { defaultMarginMs, type RateLimiter } from '../src/billing/rate-limiter.js';
import type { JobData } from '../src/queue/job-data.js';
import type { StabilityClient } from '../src/stability/client.js';
import { startAutoConcurrency } from './auto-concurrency.js';
import { createConcurrencyController, type ConcurrencyBound } from './concurrency.js';
import type { Consumer } from './consumer.js';
import { createWorkerMetrics, startMetricsServer } from './metrics.js';

/**
 * What watches the worker's requests: the Prometheus metrics (`--metrics-port`) and the auto
 * concurrency controller. Both see the API client, the limiter and the processor through wrappers,
 * so the processor does not know about them.
 */
export interface Instruments {
  client: StabilityClient;
  limiter: RateLimiter;
  processor(p: Processor<JobData>): Processor<JobData>;
  /** The consumer whose concurrency auto adjusts, once it exists. */
  bind(consumer: Pick<Consumer, 'setConcurrency'>): void;
  concurrency(): { concurrency: number; bound: ConcurrencyBound | 'fixed' };
  stop(): Promise<void>;
}

export interface InstrumentsOptions {
  wc: WorkerConfig;
  client: StabilityClient;
  limiter: RateLimiter;
  queue: Queue<JobData>;
  logger: Logger;
  now: () => number;
}

/** A quarter of the machine's memory, between 64 MiB and 2 GiB, for answers in flight. */
function memoryBudget(): number {
  return Math.max(64 * 2 ** 20, Math.min(2 * 2 ** 30, Math.floor(totalmem() / 4)));
}

export async function startInstruments(o: InstrumentsOptions): Promise<Instruments> {
  const { wc, limiter } = o;
  let consumer: Pick<Consumer, 'setConcurrency'> | null = null;
  const utilization = async () => (await limiter.inWindow()) / wc.rate.count;
  const auto = wc.autoConcurrency
    ? startAutoConcurrency({
        controller: createConcurrencyController({
          keyRate: wc.rate.count / ((wc.rate.windowMs + (wc.rateMarginMs ?? defaultMarginMs(wc.rate.windowMs))) / 1000),
          max: wc.maxConcurrency,
          memoryBudget: memoryBudget(),
          now: o.now,
          initial: wc.concurrency,
        }),
        keyUtilization: utilization,
        apply: (n) => consumer?.setConcurrency(n),
        logger: o.logger,
        now: o.now,
      })
    : null;
  const concurrency = () => (auto ? auto.current() : { concurrency: wc.concurrency, bound: 'fixed' as const });
  const metrics =
    wc.metricsPort === null
      ? null
      : createWorkerMetrics({
          queue: o.queue,
          lockoutMs: () => limiter.lockoutRemainingMs(),
          limiterUtilization: utilization,
          concurrency: () => concurrency().concurrency,
        });
  const server = metrics ? await startMetricsServer({ port: wc.metricsPort!, metrics, queue: o.queue }) : null;
  if (server) o.logger.info({ url: server.url }, `metrics on ${server.url}`);
  let client = o.client;
  if (metrics) client = metrics.instrument(client);
  if (auto) client = auto.client(client);
  return {
    client,
    limiter: auto ? auto.limiter(limiter) : limiter,
    processor: (p) => (auto ? auto.processor(p) : p),
    bind(c) {
      consumer = c;
      c.setConcurrency(concurrency().concurrency);
    },
    concurrency,
    async stop() {
      auto?.stop();
      await server?.close();
    },
  };
}
