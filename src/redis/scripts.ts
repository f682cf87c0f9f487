/**
 * One way to keep Lua: every script nightshift runs is a `LuaScript` loaded with `loadScript`, which
 * uses ioredis `defineCommand` (EVALSHA, falling back to EVAL after a NOSCRIPT, e.g. once Redis
 * restarted). Names are `ns` + PascalCase. Each script's definition opens with a comment saying its
 * KEYS, ARGV and result. Code several scripts share is a Lua function here, prepended by the loader
 * to the scripts that list it in `uses`.
 */
import type { Redis } from 'ioredis';

export type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** Lua functions scripts may use. */
const INCLUDES = {
  /**
   * nowMs(clock): the caller's clock in epoch ms when it sent one (tests inject a clock), else Redis
   * TIME, one clock for every machine, so skewed local clocks cannot disagree about the window.
   */
  nowMs: `
local function nowMs(clock)
  local n = tonumber(clock)
  if n then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`,
  /**
   * rateSlot(grants, lockout, free, now, count, span, gap, member, ttl, mode): the next slot of a
   * sliding window of `count` per `span` ms, at most one per `gap` ms, none before a lockout ends.
   * Slots are only ever appended after the last one (so every window stays within `count`), except
   * that a slot given back (in `free`) is taken again first: it was part of a valid schedule.
   * mode 'reserve' books the slot even when it lies ahead; mode 'now' books it only when it is now.
   * Result: {1, at, now} booked for `at`, {0, at, now} not booked (the next slot is at `at`), or
   * {2, end, now} during a lockout; `now` is the clock used, so callers wait `at - now` on Redis' clock.
   */
  rateSlot: `
local function rateSlot(kGrants, kLock, kFree, now, count, span, gap, member, ttl, mode)
  local untilMs = tonumber(redis.call('GET', kLock))
  if untilMs and untilMs > now then return {2, untilMs, now} end
  redis.call('ZREMRANGEBYSCORE', kGrants, '-inf', now - span)
  redis.call('ZREMRANGEBYSCORE', kFree, '-inf', '(' .. now)
  local at = now
  local free = redis.call('ZRANGE', kFree, 0, 0, 'WITHSCORES')
  if free[1] then
    at = tonumber(free[2])
  else
    local last = redis.call('ZRANGE', kGrants, -1, -1, 'WITHSCORES')
    if last[1] and tonumber(last[2]) + gap > at then at = tonumber(last[2]) + gap end
    local n = redis.call('ZCARD', kGrants)
    if n >= count then
      local e = redis.call('ZRANGE', kGrants, n - count, n - count, 'WITHSCORES')
      if tonumber(e[2]) + span > at then at = tonumber(e[2]) + span end
    end
  end
  if at > now and mode ~= 'reserve' then return {0, at, now} end
  if free[1] then redis.call('ZREM', kFree, free[1]) end
  redis.call('ZADD', kGrants, at, member)
  redis.call('PEXPIRE', kGrants, at - now + span + ttl)
  return {1, at, now}
end
`,
  /**
   * ledgerReserve(ledger, micro): reserves `micro` unless billed + possibly billed + reserved would
   * pass the batch's budget. Returns {1} when reserved, else {0, budget, committed}.
   */
  ledgerReserve: `
local function ledgerReserve(kLedger, micro)
  local h = redis.call('HMGET', kLedger, 'billed', 'maybe_billed', 'reserved', 'budget')
  local committed = (tonumber(h[1]) or 0) + (tonumber(h[2]) or 0) + (tonumber(h[3]) or 0)
  local credits = tonumber(micro)
  local budget = tonumber(h[4])
  if budget and committed + credits > budget then return {0, budget, committed} end
  redis.call('HINCRBY', kLedger, 'reserved', credits)
  return {1}
end
`,
  /**
   * ledgerSettle(ledger, micro, outcome): releases a reservation of `micro` (never below zero, so a
   * settle without one, or twice, is harmless) and books it as 'billed', 'maybe_billed' or nothing.
   */
  ledgerSettle: `
local function ledgerSettle(kLedger, micro, outcome)
  local credits = tonumber(micro)
  local reserved = tonumber(redis.call('HGET', kLedger, 'reserved')) or 0
  local release = math.min(reserved, credits)
  if release > 0 then redis.call('HINCRBY', kLedger, 'reserved', -release) end
  if outcome == 'billed' then
    redis.call('HINCRBY', kLedger, 'billed', credits)
  elseif outcome == 'maybe_billed' then
    redis.call('HINCRBY', kLedger, 'maybe_billed', credits)
  end
end
`,
  /**
   * settleSent(ledger, claim, sent, micro, owner, outcome): books the owner's request as `outcome`
   * ('billed', 'maybe_billed' or 'unbilled': see ledgerSettle) and drops the owner's sent mark and
   * claim, once: the owner's sent mark is the request still to book (a mark of '1', set before marks
   * named their owner, counts when the claim is the owner's), so a second run books nothing. Another
   * owner's mark, or none, means another took the lapsed claim over and already turned this
   * request's reservation into possibly billed: nothing is booked. Needs ledgerSettle.
   */
  settleSent: `
local function settleSent(kLedger, kClaim, kSent, micro, owner, outcome)
  local sent = redis.call('GET', kSent)
  local claimed = redis.call('GET', kClaim) == owner
  if sent == owner or (sent == '1' and claimed) then
    ledgerSettle(kLedger, micro, outcome)
    redis.call('DEL', kSent)
  end
  if claimed then redis.call('DEL', kClaim) end
end
`,
  /**
   * batchSetStates(states, counts, index, done, batch, list, from): records (jobId, state, file or '')
   * triples from list[from] on; returns how many job ids were new to the batch. Registers the batch
   * in the index (first registration time, from Redis so all machines agree). counts holds total and
   * one field per final state; pending is derived, so it needs no field. Needs nowMs.
   */
  batchSetStates: `
local function batchSetStates(kStates, kCounts, kIndex, kDone, batch, list, from)
  redis.call('ZADD', kIndex, 'NX', nowMs(''), batch)
  local added = 0
  for i = from, #list, 3 do
    local id, new, file = list[i], list[i + 1], list[i + 2]
    local old = redis.call('HGET', kStates, id)
    if old ~= new then
      redis.call('HSET', kStates, id, new)
      if not old then
        added = added + 1
        redis.call('HINCRBY', kCounts, 'total', 1)
      elseif old ~= 'pending' then
        redis.call('HINCRBY', kCounts, old, -1)
      end
      if new ~= 'pending' then redis.call('HINCRBY', kCounts, new, 1) end
    end
    if file ~= '' then redis.call('HSET', kDone, id, file) end
  end
  return added
end
`,
} as const;

export type LuaInclude = keyof typeof INCLUDES;

export interface LuaScript {
  /** `ns` + PascalCase, unique across nightshift: it becomes a method of the connection. */
  name: string;
  /** How many of the arguments are keys; null: it varies, and the first argument says how many. */
  numberOfKeys: number | null;
  lua: string;
  uses?: readonly LuaInclude[];
}

/** A Lua script as a function of (...KEYS, ...ARGV) on this connection. */
export function loadScript(redis: Redis, s: LuaScript): ScriptFn {
  if (!/^ns[A-Z][A-Za-z0-9]*$/.test(s.name)) throw new Error(`script name ${s.name} must be ns + PascalCase`);
  const lua = [...(s.uses ?? []).map((u) => INCLUDES[u]), s.lua].join('\n');
  redis.defineCommand(s.name, s.numberOfKeys === null ? { lua } : { numberOfKeys: s.numberOfKeys, lua });
  const fn = (redis as unknown as Record<string, ScriptFn | undefined>)[s.name];
  if (!fn) throw new Error(`ioredis did not define ${s.name}`);
  return fn.bind(redis);
}
