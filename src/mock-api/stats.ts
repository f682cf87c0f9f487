import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MockRequestRecord, MockStats } from './types.js';

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
    requests: [],
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
  stats.requests.length = 0;
}

/** Counts a request as it arrives and fills in its record when it is answered. */
export function trackRequest(
  stats: MockStats,
  ctx: { req: IncomingMessage; res: ServerResponse; now: () => number },
): MockRequestRecord {
  const { res, now } = ctx;
  const record: MockRequestRecord = {
    remote: ctx.req.socket.remoteAddress ?? '',
    arrival: now(),
    generation: null,
    billed: false,
    status: null,
    finishedAt: null,
  };
  stats.total++;
  stats.arrivals.push(record.arrival);
  stats.requests.push(record);
  res.on('finish', () => {
    stats.byStatus.set(res.statusCode, (stats.byStatus.get(res.statusCode) ?? 0) + 1);
    record.status = res.statusCode;
    record.finishedAt = now();
  });
  return record;
}
