/**
 * The Lua of the shared rate limiter. Every script takes ARGV[1] = the caller's clock, or '' to use
 * Redis TIME (see nowMs); slot times are on that clock.
 */
import type { LuaScript } from '../redis/scripts.js';

/**
 * KEYS: grants, lockout, free. ARGV: now, count, span (= windowMs + marginMs), member, idle ttl,
 * min gap, mode ('now' | 'reserve').
 * Result: rateSlot's: {1, at, now} booked, {0, at, now} not booked, {2, end, now} lockout.
 */
export const SLOT: LuaScript = {
  name: 'nsRateSlot',
  numberOfKeys: 3,
  uses: ['nowMs', 'rateSlot'],
  lua: `
return rateSlot(KEYS[1], KEYS[2], KEYS[3], nowMs(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[6]), ARGV[4], tonumber(ARGV[5]), ARGV[7])
`,
};

/**
 * KEYS: grants, lockout, free. ARGV: now, member, window for a late holder, count, span, gap, idle ttl,
 * lateness allowed (a quarter of the margin).
 * Result: {1, at, now} the slot is this holder's and due; {0, at, now} it is due at `at` (not yet, or
 * booked again); {2, end, now} a lockout runs (the slot is dropped); {3, 0, now} the slot is void (a
 * lockout took it).
 * A holder that wakes late (a busy machine) sends later than booked. Up to a quarter of the margin late, the
 * slot stands as booked. Later than that, it moves to now when a window of the API's length plus three
 * quarters of the margin still holds it there; otherwise it is booked again at the end of the schedule, so a late
 * wake-up can never crowd a window.
 */
export const CONFIRM: LuaScript = {
  name: 'nsRateConfirm',
  numberOfKeys: 3,
  uses: ['nowMs', 'rateSlot', 'fitsAt'],
  lua: `
local now = nowMs(ARGV[1])
local at = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))
if not at then return {3, 0, now} end
if at > now then return {0, at, now} end
local untilMs = tonumber(redis.call('GET', KEYS[2]))
if untilMs and untilMs > now then
  redis.call('ZREM', KEYS[1], ARGV[2])
  return {2, untilMs, now}
end
-- Late by at most a quarter of the margin: still safe against every window, and the booked time stays, so
-- small delays do not push the slots booked from this one later.
if now - at <= tonumber(ARGV[8]) then return {1, at, now} end
local count = tonumber(ARGV[4])
if fitsAt(KEYS[1], now, tonumber(ARGV[3]), count, ARGV[2]) then
  redis.call('ZADD', KEYS[1], 'XX', now, ARGV[2])
  return {1, now, now}
end
redis.call('ZREM', KEYS[1], ARGV[2])
local s = rateSlot(KEYS[1], KEYS[2], KEYS[3], now, count, tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[2],
  tonumber(ARGV[7]), 'reserve')
if s[1] == 2 then return {2, s[2], now} end
if s[2] > now then return {0, s[2], now} end
return {1, s[2], now}
`,
};

/**
 * KEYS: grants, free. ARGV: now, member, idle ttl. Result: 1 given back, 0 it was not held.
 * A slot still ahead goes to the free set, where the next asker takes it; a past one just goes.
 */
export const GIVE_BACK: LuaScript = {
  name: 'nsRateGiveBack',
  numberOfKeys: 2,
  uses: ['nowMs'],
  lua: `
local now = nowMs(ARGV[1])
local at = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))
if not at then return 0 end
redis.call('ZREM', KEYS[1], ARGV[2])
if at > now then
  redis.call('ZADD', KEYS[2], at, ARGV[2])
  redis.call('PEXPIRE', KEYS[2], at - now + tonumber(ARGV[3]))
end
return 1
`,
};

/**
 * KEYS: lockout, grants, free. ARGV: now, ms. Result: the lockout remaining, in ms.
 * The value is the end time so an injected clock works too; PX only cleans up. Slots reserved
 * inside the lockout are void: their holders learn it when they confirm, and never send.
 */
export const LOCKOUT: LuaScript = {
  name: 'nsRateLockout',
  numberOfKeys: 3,
  uses: ['nowMs'],
  lua: `
local now = nowMs(ARGV[1])
local ms = tonumber(ARGV[2])
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur and cur >= now + ms then
  return cur - now
end
redis.call('SET', KEYS[1], now + ms, 'PX', ms)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '(' .. now, '(' .. (now + ms))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now + ms))
return ms
`,
};

/** KEYS: grants, lockout. ARGV: now, span. Result: {grants in the window up to now, lockout remaining ms}. */
export const PEEK: LuaScript = {
  name: 'nsRatePeek',
  numberOfKeys: 2,
  uses: ['nowMs'],
  lua: `
local now = nowMs(ARGV[1])
local span = tonumber(ARGV[2])
local inWindow = redis.call('ZCOUNT', KEYS[1], '(' .. (now - span), now)
local untilMs = tonumber(redis.call('GET', KEYS[2]))
local remaining = 0
if untilMs and untilMs > now then remaining = untilMs - now end
return {inWindow, remaining}
`,
};
