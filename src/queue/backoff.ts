/**
 * Exponential backoff with jitter, a pure function of (attempt, base, random) so it can
 * be tested without sleeping. Jitter spreads the retries of many workers that failed
 * together, so they do not hit a recovering API at the same instant.
 */
export function backoffDelay(attemptsMade: number, baseMs: number, random: () => number, capMs = 10 * 60_000): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attemptsMade - 1));
  // "Equal jitter": half fixed, half random, so a delay never collapses to zero.
  return Math.round(exp / 2 + random() * (exp / 2));
}
