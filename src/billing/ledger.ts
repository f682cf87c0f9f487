/**
 * Credits per batch and the batch's budget (`--max-credits`), enforced atomically across workers:
 * a worker reserves a job's credits before calling the API and settles them after; a job that would
 * go over the budget fails unsent. A batch is (API, name): a mock batch's credits never count
 * against a real batch's budget.
 *
 * Amounts are stored as integer micro-credits (×1e6) and changed with HINCRBY, so thousands of
 * fractional prices (0.2, 6.5, …) add up exactly.
 */
import type { Redis } from 'ioredis';
import { loadScript, type LuaScript } from '../redis/scripts.js';
import { batchKeys } from '../redis/keys.js';

export type SettleOutcome = 'billed' | 'maybe_billed' | 'unbilled';

export type ReserveResult = { ok: true } | { ok: false; budget: number; committed: number };

export interface LedgerTotals {
  /** Credits the API charged. */
  billed: number;
  /** Credits for requests that may have been charged (timeouts, lost connections). */
  maybeBilled: number;
  /** Credits held by requests in flight. */
  reserved: number;
  /** The batch's budget; null means no limit. */
  budget: number | null;
}

export interface Ledger {
  /** Sets the budget; null removes it. */
  setBudget(batch: string, credits: number | null): Promise<void>;
  /** The budget becomes max(current, `credits`), or `credits` on a batch without one. Returns the budget. */
  raiseBudget(batch: string, credits: number): Promise<number>;
  /** Holds `credits` unless billed + maybeBilled + reserved + credits would exceed the budget. */
  reserve(batch: string, credits: number): Promise<ReserveResult>;
  /** Releases a reservation and books it as billed, maybe billed, or not at all. */
  settle(batch: string, credits: number, outcome: SettleOutcome): Promise<void>;
  /** Counts a request whose outcome can never be known (its sender died) as possibly billed. */
  addMaybeBilled(batch: string, credits: number): Promise<void>;
  get(batch: string): Promise<LedgerTotals>;
}

const MICRO = 1_000_000;

export function toMicro(credits: number): number {
  if (!Number.isFinite(credits) || credits < 0)
    throw new RangeError(`credits must be a finite number >= 0, got ${credits}`);
  return Math.round(credits * MICRO);
}

export const fromMicro = (micro: number): number => micro / MICRO;

/**
 * KEYS: ledger hash. ARGV: micro-credits.
 * Result: {1} when reserved, else {0, budget, committed}.
 */
const RESERVE: LuaScript = {
  name: 'nsLedgerReserve',
  numberOfKeys: 1,
  uses: ['ledgerReserve'],
  lua: `return ledgerReserve(KEYS[1], ARGV[1])`,
};

/** KEYS: ledger hash. ARGV: micro-credits, outcome (billed | maybe_billed | unbilled). Result: 1. */
const SETTLE: LuaScript = {
  name: 'nsLedgerSettle',
  numberOfKeys: 1,
  uses: ['ledgerSettle'],
  lua: `
ledgerSettle(KEYS[1], ARGV[1], ARGV[2])
return 1
`,
};

/** KEYS: ledger hash. ARGV: micro-credits. Result: the budget after, max(budget, credits). */
const RAISE: LuaScript = {
  name: 'nsLedgerRaise',
  numberOfKeys: 1,
  lua: `
local budget = tonumber(redis.call('HGET', KEYS[1], 'budget'))
local wanted = tonumber(ARGV[1])
if budget and budget >= wanted then return budget end
redis.call('HSET', KEYS[1], 'budget', ARGV[1])
return wanted
`,
};

export function createLedger(opts: { redis: Redis; prefix: string; api: string }): Ledger {
  const { redis, prefix, api } = opts;
  const key = (batch: string) => batchKeys(prefix, { api, batch }).ledger;
  const reserveScript = loadScript(redis, RESERVE);
  const settleScript = loadScript(redis, SETTLE);
  const raiseScript = loadScript(redis, RAISE);

  return {
    async setBudget(batch, credits) {
      if (credits === null) await redis.hdel(key(batch), 'budget');
      else await redis.hset(key(batch), 'budget', toMicro(credits));
    },

    async raiseBudget(batch, credits) {
      return fromMicro(Number(await raiseScript(key(batch), toMicro(credits))));
    },

    async reserve(batch, credits) {
      const r = (await reserveScript(key(batch), toMicro(credits))) as number[];
      if (r[0] === 1) return { ok: true };
      return { ok: false, budget: fromMicro(Number(r[1])), committed: fromMicro(Number(r[2])) };
    },

    async addMaybeBilled(batch, credits) {
      await redis.hincrby(key(batch), 'maybe_billed', toMicro(credits));
    },

    async settle(batch, credits, outcome) {
      await settleScript(key(batch), toMicro(credits), outcome);
    },

    async get(batch) {
      const [billed, maybe, reserved, budget] = await redis.hmget(
        key(batch),
        'billed',
        'maybe_billed',
        'reserved',
        'budget',
      );
      return {
        billed: fromMicro(Number(billed ?? 0)),
        maybeBilled: fromMicro(Number(maybe ?? 0)),
        reserved: fromMicro(Number(reserved ?? 0)),
        budget: budget === null || budget === undefined ? null : fromMicro(Number(budget)),
      };
    },
  };
}
