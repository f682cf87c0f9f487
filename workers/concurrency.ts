/**
 * `--concurrency auto`: how many requests this worker keeps in flight, from what it observes.
 *
 * Little's law: to send R requests a second when each takes L seconds, R × L must be in flight.
 * The controller grows while the shared limiter grants at once and every slot of this worker is
 * busy (concurrency, not the limit, is what holds it back), up to the key's whole need
 * R_key × L. Once the key's window is nearly full and requests queue at the limiter, the limit is
 * reached (a queue alone may be this worker's own burst being spaced out): the worker keeps only
 * what its own share needs, r_mine × L, plus headroom so a request is always ready when a slot
 * frees. Workers sharing a key each keep their share, so together they hold R_key × L, not N× it.
 * Bounded by the maximum and by memory (answers in flight are what costs).
 */

export type ConcurrencyBound = 'rate limit' | 'latency' | 'maximum' | 'memory';

export interface ConcurrencyOptions {
  /** Requests per second the API allows the key (after the limiter's margin). */
  keyRate: number;
  max: number;
  /** Bytes this worker may spend on answers in flight. */
  memoryBudget: number;
  now: () => number;
  /** Starting value, before anything is observed. Default min(16, max). */
  initial?: number;
  /** Extra over Little's law. Default 0.15. */
  headroom?: number;
  /** Time constant of the averages, ms. Default 5000. */
  smoothingMs?: number;
}

export interface ConcurrencyState {
  concurrency: number;
  bound: ConcurrencyBound;
  /** Averages the decision was made from. */
  latencyMs: number;
  grantRate: number;
  waitMs: number;
}

export interface ConcurrencyController {
  /** A request got its slot after waiting `waitMs` at the limiter. */
  onGrant(waitMs: number): void;
  /** An answer arrived `latencyMs` after its request left, with `bytes` of body. */
  onAnswer(latencyMs: number, bytes: number): void;
  /**
   * Recomputes from the averages, the slots now busy and the share of the key's rate-limit window
   * in use (0..1, from the shared limiter); call about once a second.
   */
  tick(busy: number, keyUtilization: number): ConcurrencyState;
  current(): ConcurrencyState;
}

export function createConcurrencyController(o: ConcurrencyOptions): ConcurrencyController {
  const headroom = 1 + (o.headroom ?? 0.15);
  // A wait shorter than the limiter's spacing between grants is no queue: a request that arrives
  // between two slots waits for the next one even when the limit is far.
  const queuedMs = Math.max(50, 1000 / o.keyRate);
  const tau = o.smoothingMs ?? 5000;
  let c = Math.max(1, Math.min(o.max, o.initial ?? 16));
  let latency: number | null = null;
  let bodyBytes: number | null = null;
  let wait = 0;
  let firstGrant: number | null = null;
  let grants = 0;
  let grantRate = 0;
  let last = o.now();
  let state: ConcurrencyState = { concurrency: c, bound: 'latency', latencyMs: 0, grantRate: 0, waitMs: 0 };

  const ewma = (prev: number | null, x: number, weight: number) => (prev === null ? x : prev + weight * (x - prev));

  return {
    onGrant(waitMs) {
      grants++;
      firstGrant ??= o.now();
      wait = ewma(wait, Math.max(0, waitMs), 0.1);
    },
    onAnswer(latencyMs, bytes) {
      latency = ewma(latency, Math.max(1, latencyMs), 0.1);
      bodyBytes = ewma(bodyBytes, Math.max(1, bytes), 0.1);
    },
    tick(busy, keyUtilization) {
      const now = o.now();
      const dt = Math.max(1, now - last);
      last = now;
      // Grants per second, smoothed over about `tau`.
      const weight = 1 - Math.exp(-dt / tau);
      grantRate += weight * ((grants * 1000) / dt - grantRate);
      grants = 0;
      const memoryCap = bodyBytes === null ? o.max : Math.max(1, Math.floor(o.memoryBudget / (2 * bodyBytes)));
      const cap = Math.min(o.max, memoryCap);
      let bound: ConcurrencyBound;
      if (latency === null) {
        // No answer yet, but the latency is at least the time since the first request left: size by
        // that lower bound while every slot is busy and the key's window has room (waiting for the
        // first answer at 8 s per image would lose 8 s of the rate).
        if (firstGrant !== null && busy >= c && keyUtilization < 0.9) {
          c = Math.max(c, Math.ceil((o.keyRate * (now - firstGrant) * headroom) / 1000));
        }
        bound = 'latency';
      } else if (keyUtilization >= 0.9 && wait > queuedMs) {
        // The key's limit is reached: keep this worker's share in flight, no more.
        c = Math.ceil((grantRate * latency * headroom) / 1000);
        bound = 'rate limit';
      } else {
        const need = Math.ceil((o.keyRate * latency * headroom) / 1000);
        // Every slot busy and nothing queued: concurrency holds throughput back; grow towards the need.
        if (busy >= c && c < need) c = Math.min(need, Math.ceil(c * 1.5));
        bound = 'latency';
      }
      if (c >= cap) {
        c = cap;
        bound = cap === o.max ? 'maximum' : 'memory';
      }
      c = Math.max(1, c);
      state = {
        concurrency: c,
        bound,
        latencyMs: Math.round(latency ?? 0),
        grantRate: round2(grantRate),
        waitMs: Math.round(wait),
      };
      return state;
    },
    current: () => state,
  };
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
