import type { MockStats } from './types.js';

/** Most timestamps within any half-open window (t - windowMs, t], matching the mock's limiter. */
export function maxInWindow(arrivals: readonly number[], windowMs: number): number {
  const a = [...arrivals].sort((x, y) => x - y);
  let best = 0;
  let i = 0;
  for (let j = 0; j < a.length; j++) {
    while (a[j]! - a[i]! >= windowMs) i++;
    best = Math.max(best, j - i + 1);
  }
  return best;
}

export function createStats(): MockStats {
  const stats: MockStats = {
    total: 0,
    byStatus: new Map(),
    generations: new Map(),
    billedCredits: 0,
    rateLimited: 0,
    arrivals: [],
    openSockets: 0,
    maxInWindow: (windowMs) => maxInWindow(stats.arrivals, windowMs),
  };
  return stats;
}

/** Reset in place: callers hold on to `mock.stats`. */
export function clearStats(stats: MockStats): void {
  stats.total = 0;
  stats.byStatus.clear();
  stats.generations.clear();
  stats.billedCredits = 0;
  stats.rateLimited = 0;
  stats.arrivals.length = 0;
}
