import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ApiError, EnvironmentError } from '../src/errors.js';
import { creditsPerImage } from '../src/models.js';
import type { StabilityClient } from '../src/stability/client.js';

/**
 * `work --metrics-port N`: Prometheus metrics of one worker process, on 127.0.0.1 only. Requests,
 * answers and credits are counted where the API is called; queue and limiter figures are read when
 * scraped.
 */
export interface WorkerMetrics {
  registry: Registry;
  /** Wraps the API client so every request is counted and timed. */
  instrument(client: StabilityClient): StabilityClient;
}

export interface ScrapeSources {
  queue: Pick<Queue, 'exportPrometheusMetrics'>;
  /** Remaining 429 lockout of this worker's key, in ms. */
  lockoutMs: () => Promise<number>;
  /** Share of the rate limit's window in use, 0..1. */
  limiterUtilization: () => Promise<number>;
  concurrency: () => number;
}

function statusClass(status: number | null): string {
  if (status === null) return 'none';
  if (status === 429) return '429';
  return `${Math.floor(status / 100)}xx`;
}

export function createWorkerMetrics(sources: ScrapeSources): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'nightshift_' });
  const requests = new Counter({
    name: 'nightshift_requests_total',
    help: 'Requests to the Stability API by status class (2xx, 4xx, 5xx, 429, none = no answer)',
    labelNames: ['class'] as const,
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'nightshift_rate_limited_total',
    help: '429 answers',
    registers: [registry],
  });
  const billed = new Counter({
    name: 'nightshift_credits_billed_total',
    help: 'Credits of images the API returned (list price)',
    registers: [registry],
  });
  const maybe = new Counter({
    name: 'nightshift_credits_possibly_billed_total',
    help: 'Credits of requests whose outcome is unknown (timeouts, lost connections)',
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'nightshift_request_duration_seconds',
    help: 'Time from sending a generation request to its answer',
    buckets: [0.5, 1, 2, 4, 8, 12, 20, 30, 60, 120, 180],
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: 'nightshift_requests_in_flight',
    help: 'Generation requests awaiting an answer',
    registers: [registry],
  });
  new Gauge({
    name: 'nightshift_concurrency',
    help: 'Requests this worker may have in flight',
    registers: [registry],
    collect() {
      this.set(sources.concurrency());
    },
  });
  new Gauge({
    name: 'nightshift_lockout_seconds',
    help: "Remaining 429 lockout of this worker's API key",
    registers: [registry],
    async collect() {
      this.set((await sources.lockoutMs().catch(() => 0)) / 1000);
    },
  });
  new Gauge({
    name: 'nightshift_limiter_utilization',
    help: 'Share of the shared rate limit used in the current window',
    registers: [registry],
    async collect() {
      this.set(await sources.limiterUtilization().catch(() => 0));
    },
  });

  const instrument = (client: StabilityClient): StabilityClient => ({
    ...client,
    async generate(req, signal) {
      const end = latency.startTimer();
      inFlight.inc();
      try {
        const res = await client.generate(req, signal);
        requests.inc({ class: '2xx' });
        billed.inc(creditsPerImage(req.model, req.params));
        return res;
      } catch (err) {
        const status = err instanceof ApiError ? err.status : null;
        requests.inc({ class: statusClass(status) });
        if (status === 429) rateLimited.inc();
        if (err instanceof ApiError && err.maybeBilled) maybe.inc(creditsPerImage(req.model, req.params));
        throw err;
      } finally {
        end();
        inFlight.dec();
      }
    },
  });
  return { registry, instrument };
}

/** Serves `/metrics` on 127.0.0.1:`port` (0: any free port); a port in use is an environment error. */
export async function startMetricsServer(o: {
  port: number;
  metrics: WorkerMetrics;
  queue: Pick<Queue, 'exportPrometheusMetrics'>;
}): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('see /metrics\n');
      return;
    }
    void (async () => {
      try {
        // Jobs by state, as BullMQ counts them for the queue.
        const jobs = await o.queue.exportPrometheusMetrics().catch(() => '');
        const ours = await o.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': o.metrics.registry.contentType }).end(`${ours}\n${jobs}\n`);
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new EnvironmentError(`--metrics-port ${o.port}: cannot listen on 127.0.0.1 (${err.code ?? err.message})`)),
    );
    server.listen(o.port, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/metrics`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
