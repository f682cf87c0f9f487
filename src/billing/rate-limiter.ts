/**
 * The shared sliding-window rate limiter: never more than `count` requests to the API in any window of
 * `windowMs`, for every worker on every machine using the same API key, plus the 429 lockout.
 *
 * BullMQ's own limiter is a fixed window counting job starts; the API judges a strict sliding window
 * and answers one excess request with a 60 s lockout, so we keep a sorted set of grant times in Redis
 * and decide each grant atomically in one Lua script.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { loadScript, type LuaScript } from '../redis/scripts.js';
import { limiterKeys } from '../redis/keys.js';

export interface RateLimiterOptions {
  /** The shared Redis connection (ioredis). */
  redis: Redis;
  /** Key prefix holding the cluster hash tag, e.g. `{nightshift}`; every key starts with it. */
  prefix: string;
  /** Identifies the API key: use `apiKeyId(key)`, never the key itself. */
  keyId: string;
  /** Requests allowed per window (the API's 150). */
  count: number;
  /** Window length in milliseconds (the API's 10 000). */
  windowMs: number;
  /** Extra milliseconds added to the window; see below. Default: defaultMarginMs(windowMs). */
  marginMs?: number;
  /** Clock in epoch milliseconds, for tests. Without it the script uses Redis `TIME`. */
  now?: () => number;
  /** Cancellable sleep, for tests. Must reject (or return) when the signal aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Source of randomness in [0, 1) for the wake-up jitter, for tests. Default Math.random. */
  random?: () => number;
  /** Space grants evenly (one per (windowMs+marginMs)/count). Default true. */
  spread?: boolean;
}

export type AcquireResult = { granted: true } | { granted: false; waitMs: number; reason: 'window' | 'lockout' };

export interface RateLimiter {
  /** Takes a slot now if one is free; otherwise says how long to wait and why. */
  tryAcquire(): Promise<AcquireResult>;
  /**
   * Waits until a slot is taken. Call it right before the request leaves: the window counts from the
   * grant, and no grant is made during a 429 lockout. Rejects with `signal.reason` when aborted.
   */
  acquire(signal?: AbortSignal): Promise<void>;
  /** Locks every worker using this key out for `ms` (after a 429). Never shortens a longer lockout. */
  lockout(ms: number): Promise<void>;
  lockoutRemainingMs(): Promise<number>;
  /** Grants inside the current (margin-extended) window. */
  inWindow(): Promise<number>;
}

/**
 * 2.5% of the window, at least 100 ms: 250 ms for the API's 10 s window (a best throughput of 0.976
 * of the limit), and the same proportion for scaled-down windows in tests and benchmarks.
 */
export function defaultMarginMs(windowMs: number): number {
  return Math.max(100, Math.round(windowMs * 0.025));
}

/** First 16 hex digits of the key's sha256: names the key in Redis and logs without revealing it. */
export function apiKeyId(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex').slice(0, 16);
}

/** Longest single sleep in acquire(): a lockout set (or a window freed) elsewhere is noticed within it. */
const MAX_SLEEP_MS = 1000;
/** Spread wake-ups so hundreds of waiters don't hit Redis in the same millisecond for one free slot. */
const JITTER_MS = 25;
/** Idle limiters vanish this long after their window would have emptied. */
const IDLE_TTL_MS = 60_000;

// Every script takes ARGV[1] = the caller's clock, or '' to use Redis TIME (see nowMs).

/**
 * KEYS: grants (zset), lockout (string holding the lockout's end time), last grant time.
 * ARGV: now, count, span (= windowMs + marginMs), unique member suffix, idle ttl, min gap.
 * Result: {1, now} granted, or {0, waitMs, reason}.
 */
const ACQUIRE: LuaScript = {
  name: 'nsRateAcquire',
  numberOfKeys: 3,
  uses: ['nowMs'],
  lua: `
local now = nowMs(ARGV[1])
local untilMs = tonumber(redis.call('GET', KEYS[2]))
if untilMs and untilMs > now then
  return {0, untilMs - now, 'lockout'}
end
local count = tonumber(ARGV[2])
local span = tonumber(ARGV[3])
local gap = tonumber(ARGV[6])
local last = tonumber(redis.call('GET', KEYS[3]))
if last and last <= now and now < last + gap then
  return {0, last + gap - now, 'window'}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - span)
local n = redis.call('ZCARD', KEYS[1])
if n < count then
  redis.call('ZADD', KEYS[1], now, now .. '-' .. ARGV[4])
  redis.call('PEXPIRE', KEYS[1], span + tonumber(ARGV[5]))
  redis.call('SET', KEYS[3], now, 'PX', span + tonumber(ARGV[5]))
  return {1, now}
end
-- A slot frees when the grant that pushes us to the limit leaves the window (n > count only if
-- another worker runs with a larger count on the same key).
local entry = redis.call('ZRANGE', KEYS[1], n - count, n - count, 'WITHSCORES')
return {0, tonumber(entry[2]) + span - now, 'window'}
`,
};

/**
 * KEYS: lockout. ARGV: now, ms. Result: the lockout remaining, in ms.
 * The value is the end time so an injected clock works too; PX only cleans up.
 */
const LOCKOUT: LuaScript = {
  name: 'nsRateLockout',
  numberOfKeys: 1,
  uses: ['nowMs'],
  lua: `
local now = nowMs(ARGV[1])
local ms = tonumber(ARGV[2])
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur and cur >= now + ms then
  return cur - now
end
redis.call('SET', KEYS[1], now + ms, 'PX', ms)
return ms
`,
};

/** KEYS: grants, lockout. ARGV: now, span. Result: {grants in window, lockout remaining ms}. */
const PEEK: LuaScript = {
  name: 'nsRatePeek',
  numberOfKeys: 2,
  uses: ['nowMs'],
  lua: `
local now = nowMs(ARGV[1])
local span = tonumber(ARGV[2])
local inWindow = redis.call('ZCOUNT', KEYS[1], '(' .. (now - span), '+inf')
local untilMs = tonumber(redis.call('GET', KEYS[2]))
local remaining = 0
if untilMs and untilMs > now then remaining = untilMs - now end
return {inWindow, remaining}
`,
};

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function createRateLimiter(opts: RateLimiterOptions): RateLimiter {
  const { redis, prefix, keyId, count, windowMs } = opts;
  // The API counts a request in the window where it *arrives*. Between taking a slot here and the
  // request reaching the API lies a variable delay (event loop, connection setup, TLS, network), so two
  // requests granted exactly windowMs apart can arrive less than windowMs apart. Enforcing
  // windowMs + marginMs absorbs that jitter; the price is a best throughput of count / (windowMs + marginMs).
  const marginMs = opts.marginMs ?? defaultMarginMs(windowMs);
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
  if (!(windowMs > 0)) throw new RangeError(`windowMs must be positive, got ${windowMs}`);
  if (!(marginMs >= 0)) throw new RangeError(`marginMs must be >= 0, got ${marginMs}`);
  const span = Math.ceil(windowMs + marginMs);
  // Grants are also spaced evenly (one per span/count): a burst of `count` requests opening
  // connections at once arrives spread out by the machine's load, which a steady stream avoids;
  // the best throughput stays count / span.
  const gapMs = opts.spread === false ? 0 : Math.floor(span / count);
  const sleep = opts.sleep ?? defaultSleep;
  const random = opts.random ?? Math.random;
  const clock = () => (opts.now ? Math.floor(opts.now()) : '');

  const { grants: grantsKey, lockout: lockoutKey, last: lastKey } = limiterKeys(prefix, keyId);
  // Members must be unique even for grants in the same millisecond from different processes.
  const member = randomBytes(6).toString('hex');
  let seq = 0;

  const acquireScript = loadScript(redis, ACQUIRE);
  const lockoutScript = loadScript(redis, LOCKOUT);
  const peekScript = loadScript(redis, PEEK);

  async function tryAcquire(): Promise<AcquireResult> {
    seq = (seq + 1) % Number.MAX_SAFE_INTEGER;
    const r = (await acquireScript(
      grantsKey,
      lockoutKey,
      lastKey,
      clock(),
      count,
      span,
      `${member}-${seq}`,
      IDLE_TTL_MS,
      gapMs,
    )) as [number, number, string?];
    if (r[0] === 1) return { granted: true };
    return { granted: false, waitMs: Math.max(1, Number(r[1])), reason: r[2] === 'lockout' ? 'lockout' : 'window' };
  }

  async function acquire(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const r = await tryAcquire();
      if (r.granted) return;
      const jitter = Math.floor(random() * JITTER_MS);
      await sleep(Math.min(r.waitMs, MAX_SLEEP_MS) + jitter, signal);
    }
  }

  async function lockout(ms: number): Promise<void> {
    const whole = Math.ceil(ms);
    if (!(whole > 0)) return;
    await lockoutScript(lockoutKey, clock(), whole);
  }

  async function peek(): Promise<[number, number]> {
    const r = (await peekScript(grantsKey, lockoutKey, clock(), span)) as [number, number];
    return [Number(r[0]), Number(r[1])];
  }

  return {
    tryAcquire,
    acquire,
    lockout,
    lockoutRemainingMs: async () => (await peek())[1],

    inWindow: async () => (await peek())[0],
  };
}

/**
 * The 429 lockout of one key as `status` and `resume` see it: they know the key's id (the workers
 * register it) but not the key or its rate.
 */
export function keyLockout(redis: Redis, prefix: string, keyId: string) {
  const key = limiterKeys(prefix, keyId).lockout;
  return {
    /** The lockout key expires when the lockout ends, so its time to live is what remains. */
    remainingMs: async () => Math.max(0, await redis.pttl(key)),
    /** Ends the lockout now: a person decided not to wait it out. */
    lift: async () => {
      await redis.del(key);
    },
  };
}
