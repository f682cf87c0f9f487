/** Public types of the fake Stability API. */

export interface FaultContext {
  /** Model id (`core`, `sd3.5-large`, `stable-diffusion-v1-6`, …); '' for balance/engines. */
  model: string;
  prompt: string;
  /** The seed as requested (0 when absent). */
  seed: number;
  /** How many times this (model, prompt, seed) has been requested, this one included. */
  attempt: number;
  path: string;
}

/** Where an `echo-key` answer puts the request's Authorization header. */
export type EchoPlace = 'name' | 'id' | 'message' | 'long-message' | 'text';

/** Who sent the request: for faults that hit one API key of several. */
export interface FaultRequest {
  /** The API key the request carried ('' when none). */
  key: string;
}

export type Fault =
  /** An error answer; `retryAfter` is sent verbatim (a date, junk), `retryAfterSec` as a number. */
  | { status: number; name?: string; message?: string; retryAfterSec?: number; retryAfter?: string }
  /** Never answer until the mock is closed. */
  | { kind: 'hang' }
  /** Wait, then answer normally. */
  | { kind: 'delay'; ms: number }
  /** Destroy the socket (TCP RST) after reading the request. */
  | { kind: 'reset' }
  /** 200 with a broken body (not billed). */
  | { kind: 'malformed' }
  /** Finish reason ERROR (v1's failed generation; not billed). */
  | { kind: 'error-finish' }
  /** Finish reason CONTENT_FILTERED (billed). */
  | { kind: 'filtered' }
  /**
   * An error answer (default status 400, 502 for `text`) that echoes the request's Authorization
   * header: as the error's `name` or `id`, inside its message, at the end of a message long enough
   * that a 300-character cut splits the key (`long-message`), or in a non-JSON body (`text`).
   */
  | { kind: 'echo-key'; in: EchoPlace; status?: number }
  /**
   * A 200 of `bytes` (default 512 MiB) that starts like the image asked for, streamed from one
   * reused chunk so the fake never holds it; `chunked` leaves Content-Length out. Not billed.
   */
  | { kind: 'huge'; bytes?: number; chunked?: boolean }
  /** A 200 whose image is the PNG signature followed by garbage. Not billed. */
  | { kind: 'png-garbage' }
  /** A normal, billed 200 whose seed (header or JSON field) is this raw text, e.g. `1e21`. */
  | { kind: 'bad-seed'; value: string };

export type FaultFn = (ctx: FaultContext, request?: FaultRequest) => Fault | undefined;

export interface MockRateLimit {
  count: number;
  windowMs: number;
  lockoutMs: number;
  /** Send Retry-After on 429 (the real API is not known to). */
  retryAfter?: boolean;
}

export interface MockLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface MockApiOptions {
  host?: string;
  port?: number;
  /** Per generation request, fixed or [min, max]; derived from the request hash so runs repeat. */
  latencyMs?: number | [number, number];
  /** Accept only this key; when unset any non-empty key is accepted. */
  apiKey?: string;
  /** Starting credits (default 1,000,000). */
  balance?: number;
  rateLimit?: MockRateLimit;
  fault?: FaultFn;
  /** Pad PNG/JPEG placeholders to about this many bytes. */
  imageBytes?: number;
  /** The v1 engines it lists and serves (default: both); any other engine answers 404, like a retired one. */
  engines?: readonly string[];
  /** Share (0..1) of generations answered 500, decided by hash(prompt, seed, attempt). */
  failRate?: number;
  logger?: MockLogger;
  /** Clock for arrival times and the rate limit (tests); defaults to Date.now. */
  now?: () => number;
}

/** One request as the fake saw it: who sent it, when, and what came of it. */
export interface MockRequestRecord {
  /** The client's address (which host sent it, when clients sit on different hosts). */
  remote: string;
  arrival: number;
  /** `${model}|${prompt}|${seed}` for a generation, null for other endpoints or a request refused before parsing. */
  generation: string | null;
  /** Whether this request was billed (a 200 SUCCESS or CONTENT_FILTERED generation). */
  billed: boolean;
  /** Status of the answer, null while unanswered (or never answered: hang, reset). */
  status: number | null;
  /** When the answer was handed to the socket; null while unanswered. */
  finishedAt: number | null;
}

export interface MockStats {
  /** Every request received. */
  total: number;
  byStatus: Map<number, number>;
  /** `${model}|${prompt}|${seed}` (requested seed) → billed (200) answers. */
  generations: Map<string, number>;
  billedCredits: number;
  /** 429 answers. */
  rateLimited: number;
  /** Arrival time (ms) of every request, in arrival order. */
  arrivals: number[];
  /** Every request, in arrival order. */
  requests: MockRequestRecord[];
  /** Sockets currently open (live, not reset by reset()). */
  openSockets: number;
  /** Most arrivals in any window (t - windowMs, t]. */
  maxInWindow(windowMs: number): number;
}

export interface MockApi {
  url: string;
  port: number;
  stats: MockStats;
  close(): Promise<void>;
  setFault(fn?: FaultFn): void;
  setBalance(n: number): void;
  /** Clear stats, attempt counts and rate-limit state; restore the starting balance and fault. */
  reset(): void;
}
