import type { Logger } from 'pino';
import type { ApiError } from '../src/errors.js';
import type { BatchState } from '../src/queue/batch-state.js';
import type { Ledger } from '../src/billing/ledger.js';
import type { RateLimiter } from '../src/billing/rate-limiter.js';
import type { CircuitBreaker } from '../src/billing/breaker.js';
import type { Inflight } from '../src/billing/inflight.js';
import type { Stash } from '../src/billing/stash.js';
import type { StabilityClient } from '../src/stability/client.js';

/** Everything the processor touches, passed in so tests can use real parts or fail them on purpose. */
export interface ProcessorDeps {
  logger: Logger;
  client: Pick<StabilityClient, 'generate'>;
  limiter: Pick<RateLimiter, 'acquire' | 'lockout'>;
  ledger: Pick<Ledger, 'reserve' | 'settle' | 'addMaybeBilled'>;
  state: Pick<BatchState, 'setState'>;
  breaker: Pick<CircuitBreaker, 'recordFailure' | 'recordSuccess'>;
  inflight: Inflight;
  stash: Stash;
  /** The API this worker calls: `mock` or the host URL. */
  api: string;
  workerId: string;
  batchDir: (batch: string) => string;
  now: () => number;
  lockoutMs: number;
  timeoutRetries: number;
  breakerThreshold: number;
  inflightRenewMs: number;
  /** First delay before writing a stashed image again (doubles each time, at most 60 s). */
  storageRetryMs: number;
  /** Pauses the whole queue and records why (auth, payment, storage, circuit). */
  pauseQueue: (reason: 'auth' | 'payment' | 'storage' | 'circuit', message: string) => Promise<void>;
  /** A 401/402: the worker stops and exits 4. */
  onStop: (err: ApiError) => void;
}
