/** What the fake API billed, per job and per host, read from its request log. */
import type { MockRequestRecord, MockStats } from '../../src/mock-api/server.js';

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

function generationsFrom(requests: readonly MockRequestRecord[], ip: string, keep: (r: MockRequestRecord) => boolean) {
  return new Set(requests.filter((r) => r.remote === ip && r.generation !== null && keep(r)).map((r) => r.generation!));
}

/** Generations `ip` had sent and not been answered for at time `t`. */
export function unansweredAt(requests: readonly MockRequestRecord[], ip: string, t: number): Set<string> {
  return generationsFrom(requests, ip, (r) => r.arrival <= t && (r.finishedAt === null || r.finishedAt > t));
}

/** Generations whose request from `ip` arrived before `t`. */
export function sentBefore(requests: readonly MockRequestRecord[], ip: string, t: number): Set<string> {
  return generationsFrom(requests, ip, (r) => r.arrival <= t);
}

/** Billed requests from `ip` that arrived within the window. */
export function billedFrom(requests: readonly MockRequestRecord[], ip: string, w: Window = {}): number {
  return requests.filter(
    (r) => r.remote === ip && r.billed && r.arrival >= (w.from ?? -Infinity) && r.arrival <= (w.to ?? Infinity),
  ).length;
}

/** Requests from `ip` (any endpoint, any answer) that arrived within the window. */
export function arrivedFrom(requests: readonly MockRequestRecord[], ip: string, w: Window): number {
  return requests.filter(
    (r) => r.remote === ip && r.arrival >= (w.from ?? -Infinity) && r.arrival <= (w.to ?? Infinity),
  ).length;
}
