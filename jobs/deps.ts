import type { Logger } from 'pino';
import type { BatchState } from '../src/queue/batch-state.js';
import type { RateLimiter } from '../src/billing/rate-limiter.js';
import type { CircuitBreaker } from '../src/billing/breaker.js';
import type { Inflight } from '../src/billing/inflight.js';
import type { Stash } from '../src/billing/stash.js';
import type { JobSteps } from '../src/billing/job-steps.js';
import type { StabilityClient } from '../src/stability/client.js';
import type { PauseReason } from '../src/queue/pause.js';
import type { BatchStore } from '../src/output/storage/types.js';
import type { ThumbnailQueue } from '../src/output/thumbnail-queue.js';

import type { StopReason } from '../src/queue/pause.js';
export type { StopReason };

/** What the processor acts on: fixed for the worker's life. */
export interface ProcessorSettings {
  /** The API this worker calls: `mock` or the host URL. */
  api: string;
  workerId: string;
  /** Lockout after a 429 without Retry-After. */
  lockoutMs: number;
  timeoutRetries: number;
  breakerThreshold: number;
  inflightRenewMs: number;
  /** First delay before writing a stashed image again (doubles each time, at most 60 s). */
  storageRetryMs: number;
}

/** Everything the processor touches, passed in so tests can use real parts or fail them on purpose. */
export interface ProcessorDeps {
  logger: Logger;
  client: Pick<StabilityClient, 'generate'>;
  limiter: Pick<RateLimiter, 'waitFor' | 'lockout'>;
  state: Pick<BatchState, 'setState'>;
  breaker: Pick<CircuitBreaker, 'recordFailure' | 'recordSuccess'>;
  inflight: Pick<Inflight, 'renew'>;
  /** The paid job's Redis work in two round trips: before the request and after its record. */
  steps: JobSteps;
  stash: Stash;
  batchDir: (batch: string) => string;
  /** Where a batch's output goes; default: its folder (`batchDir`). */
  storeFor?: (batch: string) => BatchStore;
  now: () => number;
  /** Pauses the whole queue and records why. */
  pauseQueue: (reason: PauseReason, message: string) => Promise<void>;
  /** A 401/402 or a retired engine: the worker stops and exits 4. */
  onStop: (reason: StopReason, message: string) => void;
  settings: ProcessorSettings;
  /** Makes each written image's thumbnail in the background; absent: the report makes them all. */
  thumbnails?: Pick<ThumbnailQueue, 'add'>;
}
