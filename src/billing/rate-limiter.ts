/**
 * The shared sliding-window rate limiter: never more than `count` requests to the API in any window of
 * `windowMs`, for every worker on every machine using the same API key, plus the 429 lockout.
 *
 * BullMQ's own limiter is a fixed window counting job starts; the API judges a strict sliding window
 * and answers one excess request with a 60 s lockout, so we keep a sorted set of grant times in Redis
 * and decide each grant atomically in one Lua script.
 *
 * A worker that cannot send now is not told to poll: it reserves the exact time of its slot (on
 * Redis' clock), sleeps until then, confirms and sends, so grants follow the window without wake-up
 * jitter. A slot not used (the job aborted, a lockout began, shutdown) is given back for the next asker.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { loadScript } from '../redis/scripts.js';
import { limiterKeys } from '../redis/keys.js';
import { CONFIRM, GIVE_BACK, LOCKOUT, PEEK, SLOT } from './rate-scripts.js';

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
  /** Clock in epoch milliseconds, for tests. Without it the scripts use Redis `TIME`. */
  now?: () => number;
  /** Cancellable sleep, for tests. Must reject (or return) when the signal aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Source of randomness in [0, 1) for the jitter of lockout polls, for tests. Default Math.random. */
  random?: () => number;
  /** Space grants evenly (one per (windowMs+marginMs)/count). Default true. */
  spread?: boolean;
}

export type AcquireResult = { granted: true } | { granted: false; waitMs: number; reason: 'window' | 'lockout' };

/**
 * A reserved slot: the request may leave `waitMs` from when it was reserved (0: now), once confirmed;
 * or a lockout that lasts `waitMs` more, during which nothing is reserved.
 */
export type Slot = { kind: 'slot'; at: number; waitMs: number; member: string } | { kind: 'lockout'; waitMs: number };

/** The arguments of the `rateSlot` Lua function, for a script that takes a slot among other steps. */
export interface SlotRequest {
  /** grants, lockout, free. */
  keys: [string, string, string];
  /** now ('' = Redis TIME), count, span, gap, member, idle ttl: in rateSlot's order after the keys. */
  args: [string | number, number, number, number, string, number];
  /** Turns the script's rateSlot result into a Slot. */
  parse(raw: unknown): Slot;
}

export interface RateLimiter {
  /** Takes a slot now if one is free; otherwise says how long to wait and why. Never books ahead. */
  tryAcquire(): Promise<AcquireResult>;
  /** Books the next slot, now or ahead; during a lockout books nothing and says how long it lasts. */
  reserve(): Promise<Slot>;
  /**
   * Sleeps until the slot is due, confirms it (a lockout may have voided it: then waits and books
   * again) and returns when the request may leave. Aborted, it gives the slot back and rejects with
   * `signal.reason`.
   */
  waitFor(slot: Slot, signal?: AbortSignal): Promise<void>;
  /** Gives an unused slot back so the next asker takes it. */
  giveBack(slot: Slot): Promise<void>;
  /** reserve() then waitFor(): call it right before the request leaves. */
  acquire(signal?: AbortSignal): Promise<void>;
  /** What a combined script needs to book a slot with `rateSlot` (mode 'reserve'). */
  slotRequest(): SlotRequest;
  /** Locks every worker using this key out for `ms` (after a 429). Never shortens a longer lockout. */
  lockout(ms: number): Promise<void>;
  lockoutRemainingMs(): Promise<number>;
  /** Grants inside the current (margin-extended) window, up to now: slots booked ahead not counted. */
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

/** Longest single sleep during a lockout: a lockout lifted (or extended) elsewhere is noticed within it. */
const MAX_SLEEP_MS = 1000;
/** Spread lockout polls so hundreds of waiters don't hit Redis in the same millisecond when it ends. */
const JITTER_MS = 25;
/** Idle limiters vanish this long after their window would have emptied. */
const IDLE_TTL_MS = 60_000;

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

type Raw = [number, number, number];

/** rateSlot's result as a Slot: booked (now or ahead) or a lockout. */
function toSlot(raw: unknown, member: string): Slot | { kind: 'later'; waitMs: number } {
  const [status, at, now] = (raw as Raw).map(Number) as Raw;
  if (status === 2) return { kind: 'lockout', waitMs: Math.max(1, at - now) };
  if (status === 0) return { kind: 'later', waitMs: Math.max(1, at - now) };
  return { kind: 'slot', at, waitMs: Math.max(0, at - now), member };
}

interface Settings {
  count: number;
  span: number;
  gap: number;
}

/** Validates the options; returns the enforced span (window + margin) and the spacing of grants. */
function settingsOf(opts: RateLimiterOptions): Settings {
  const { count, windowMs } = opts;
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
  return { count, span, gap: opts.spread === false ? 0 : Math.floor(span / count) };
}

export function createRateLimiter(opts: RateLimiterOptions): RateLimiter {
  const { redis } = opts;
  const { count, span, gap } = settingsOf(opts);
  // Lateness below this is timer granularity, not a busy machine: it costs a tenth of the margin at most.
  const lateMs = Math.min(10, Math.floor((span - opts.windowMs) / 10));
  // Half the booked spacing: a holder a little late does not delay the next one, a burst is spread.
  const spacing = Math.floor(gap / 2);
  const sleep = opts.sleep ?? defaultSleep;
  const random = opts.random ?? Math.random;
  const clock = () => (opts.now ? Math.floor(opts.now()) : '');
  const keys = limiterKeys(opts.prefix, opts.keyId);
  // Members must be unique even for grants in the same millisecond from different processes.
  const id = randomBytes(6).toString('hex');
  let seq = 0;
  const nextMember = () => `${id}-${(seq = (seq + 1) % Number.MAX_SAFE_INTEGER)}`;
  const slotScript = loadScript(redis, SLOT);
  const confirmScript = loadScript(redis, CONFIRM);
  const giveBackScript = loadScript(redis, GIVE_BACK);
  const lockoutScript = loadScript(redis, LOCKOUT);
  const peekScript = loadScript(redis, PEEK);

  const slot = (member: string, mode: 'now' | 'reserve') =>
    slotScript(keys.grants, keys.lockout, keys.free, clock(), count, span, member, IDLE_TTL_MS, gap, mode);

  async function tryAcquire(): Promise<AcquireResult> {
    const s = toSlot(await slot(nextMember(), 'now'), '');
    if (s.kind === 'slot') return { granted: true };
    return { granted: false, waitMs: s.waitMs, reason: s.kind === 'lockout' ? 'lockout' : 'window' };
  }

  async function reserve(): Promise<Slot> {
    const member = nextMember();
    return toSlot(await slot(member, 'reserve'), member) as Slot;
  }

  async function giveBack(s: Slot): Promise<void> {
    if (s.kind === 'slot') await giveBackScript(keys.grants, keys.free, clock(), s.member, IDLE_TTL_MS);
  }

  /** After sleeping until a slot: due (waitMs 0), not yet, or replaced (a lockout voided it). */
  async function confirm(s: Slot & { kind: 'slot' }): Promise<Slot> {
    const raw = await confirmScript(keys.grants, keys.lockout, clock(), s.member, count, span, lateMs, spacing);
    const [status, at, now] = (raw as Raw).map(Number) as Raw;
    if (status === 1) return { ...s, at, waitMs: 0 };
    if (status === 0) return { ...s, at, waitMs: Math.max(1, at - now) };
    if (status === 2) return { kind: 'lockout', waitMs: Math.max(1, at - now) };
    return reserve();
  }

  async function sleepFor(s: Slot, signal?: AbortSignal): Promise<void> {
    const ms = s.kind === 'lockout' ? Math.min(s.waitMs, MAX_SLEEP_MS) + Math.floor(random() * JITTER_MS) : s.waitMs;
    try {
      await sleep(ms, signal);
      signal?.throwIfAborted();
    } catch (err) {
      await giveBack(s).catch(() => {});
      throw err;
    }
  }

  async function waitFor(first: Slot, signal?: AbortSignal): Promise<void> {
    let s = first;
    for (;;) {
      if (s.kind === 'slot' && s.waitMs === 0) return;
      await sleepFor(s, signal);
      s = s.kind === 'lockout' ? await reserve() : await confirm(s);
    }
  }

  async function peek(): Promise<[number, number]> {
    const r = (await peekScript(keys.grants, keys.lockout, clock(), span)) as [number, number];
    return [Number(r[0]), Number(r[1])];
  }

  return {
    tryAcquire,
    reserve,
    waitFor,
    giveBack,
    async acquire(signal) {
      signal?.throwIfAborted();
      await waitFor(await reserve(), signal);
    },
    slotRequest() {
      const member = nextMember();
      return {
        keys: [keys.grants, keys.lockout, keys.free],
        args: [clock(), count, span, gap, member, IDLE_TTL_MS],
        parse: (raw) => toSlot(raw, member) as Slot,
      };
    },
    async lockout(ms) {
      const whole = Math.ceil(ms);
      if (whole > 0) await lockoutScript(keys.lockout, keys.grants, keys.free, clock(), whole);
    },
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
