import type { MockRateLimit } from './types.js';

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * The real API's limit as a strict sliding window per key: a request is refused if accepting it
 * would put more than `count` accepted requests in (t - windowMs, t]; a refusal locks the key out
 * for lockoutMs, during which every request is refused (and not counted).
 */
export function createRateLimiter(cfg: MockRateLimit) {
  const keys = new Map<string, { accepted: number[]; lockedUntil: number }>();
  return {
    check(key: string, t: number): RateDecision {
      let s = keys.get(key);
      if (!s) keys.set(key, (s = { accepted: [], lockedUntil: 0 }));
      if (t < s.lockedUntil) return { ok: false, retryAfterMs: s.lockedUntil - t };
      while (s.accepted.length > 0 && s.accepted[0]! <= t - cfg.windowMs) s.accepted.shift();
      if (s.accepted.length + 1 > cfg.count) {
        s.lockedUntil = t + cfg.lockoutMs;
        return { ok: false, retryAfterMs: cfg.lockoutMs };
      }
      s.accepted.push(t);
      return { ok: true };
    },
    reset(): void {
      keys.clear();
    },
  };
}
