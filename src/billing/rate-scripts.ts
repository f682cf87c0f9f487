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
 * KEYS: grants, lockout. ARGV: now, member, count, span, lateness kept unrecorded (ms), least spacing
 * between grants (ms).
 * Result: {1, now, now} the slot is this holder's and it may send now; {0, at, now} not before `at`;
 * {2, end, now} a lockout runs (the slot is dropped); {3, 0, now} the slot is void (a lockout took it).
 * The booked time says when to wake; whether to send is decided here, on the real time, as a grant
 * always was: fewer than `count` grants in the window ending now. A holder that woke late (a busy
 * machine) may find the window taken by those that woke on time: it waits until one leaves the
 * window instead of crowding it. Its grant is then recorded at the time it really sends.
 */
export const CONFIRM: LuaScript = {
  name: 'nsRateConfirm',
  numberOfKeys: 2,
  uses: ['nowMs'],
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
local count = tonumber(ARGV[3])
local span = tonumber(ARGV[4])
-- Grants (and slots due but not yet confirmed) in the window ending now, this one left out.
local inWindow = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - span), now, 'WITHSCORES')
local others = {}
for i = 1, #inWindow, 2 do
  if inWindow[i] ~= ARGV[2] then others[#others + 1] = tonumber(inWindow[i + 1]) end
end
if #others >= count then return {0, others[#others - count + 1] + span, now} end
-- Holders that all woke late at once (a stalled machine) still leave spaced, never in a burst.
local spacing = tonumber(ARGV[6])
local last = others[#others]
if spacing > 0 and last and last > now - spacing then return {0, last + spacing, now} end
-- A few milliseconds late (timer granularity) keeps the booked time, so the slots booked a window
-- after it need not wait those milliseconds again; later than that, the real time is recorded.
if now - at > tonumber(ARGV[5]) then redis.call('ZADD', KEYS[1], 'XX', now, ARGV[2]) end
return {1, now, now}
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
