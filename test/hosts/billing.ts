/** What the fake API billed, per job and per host, read from its request log. */
import type { MockRequestRecord, MockStats } from '../../src/mock-api/types.js';

export interface Billing {
  /** Generation (model|prompt|seed) → times billed. */
  perGeneration: Map<string, number>;
  /** Bills beyond the first, over all generations: what was paid twice. */
  duplicates: number;
  /** Generations billed more than once. */
  twiceBilled: string[];
}

export function billing(stats: MockStats): Billing {
  const perGeneration = new Map(stats.generations);
  const twiceBilled = [...perGeneration].filter(([, n]) => n > 1).map(([g]) => g);
  const duplicates = [...perGeneration.values()].reduce((a, n) => a + n - 1, 0);
  return { perGeneration, duplicates, twiceBilled };
}

/** The prompt of a generation id (`model|prompt|seed`; prompts here hold no `|`). */
export const promptOf = (generation: string): string => generation.split('|')[1] ?? '';

type Window = { from?: number; to?: number };

const within = (t: number, w: Window) => t >= (w.from ?? -Infinity) && t <= (w.to ?? Infinity);

/** Generations `ip` had sent and not been answered for at time `t`. */
export function unansweredAt(requests: readonly MockRequestRecord[], ip: string, t: number): Set<string> {
  return new Set(
    requests
      .filter((r) => r.remote === ip && r.generation !== null && r.arrival <= t)
      .filter((r) => r.finishedAt === null || r.finishedAt > t)
      .map((r) => r.generation!),
  );
}

/** Generations whose request from `ip` arrived within the window. */
export function sentWithin(requests: readonly MockRequestRecord[], ip: string, w: Window): Set<string> {
  return new Set(
    requests.filter((r) => r.remote === ip && r.generation !== null && within(r.arrival, w)).map((r) => r.generation!),
  );
}

/** Billed requests from `ip` that arrived within the window. */
export function billedFrom(requests: readonly MockRequestRecord[], ip: string, w: Window = {}): number {
  return requests.filter((r) => r.remote === ip && r.billed && within(r.arrival, w)).length;
}

/** Requests from `ip` (any endpoint, any answer) that arrived within the window. */
export function arrivedFrom(requests: readonly MockRequestRecord[], ip: string, w: Window): number {
  return requests.filter((r) => r.remote === ip && within(r.arrival, w)).length;
}
