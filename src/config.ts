import { resolve } from 'node:path';
import { UsageError } from './errors.js';

/**
 * The only module that reads process.env. Commands pass their parsed flags in;
 * flags win over the environment, which wins over defaults.
 */

export interface CommonFlags {
  redis?: string;
  queue?: string;
  out?: string;
  mock?: boolean;
  logLevel?: string;
  prefix?: string;
}

export interface WorkerFlags {
  concurrency?: string;
  rate?: string;
  lockout?: string;
  requestTimeout?: string;
  timeoutRetries?: string;
  exitWhenIdle?: boolean;
  logFile?: string;
  lockDuration?: string;
  stalledInterval?: string;
  maxStalled?: string;
  backoff?: string;
  rateMargin?: string;
  breakerThreshold?: string;
  probeInterval?: string;
  grace?: string;
  watchdog?: string;
  accept?: string;
}

export interface Config {
  /** Null: none given; `run` then tries the default (127.0.0.1:6379) and finally a private redis-server. */
  redisUrl: string | null;
  /** The Redis tried when none is given (tests point it elsewhere to exercise the fallback). */
  defaultRedisUrl: string;
  queue: string;
  /** Key prefix for BullMQ and our own keys; a {hash tag} so Redis Cluster keeps them in one slot. */
  prefix: string;
  out: string;
  mock: boolean;
  logLevel: string;
  api: {
    host: string;
    key: string | null;
    /** What jobs record as their API: `mock` or the host URL. */
    identity: string;
    accept: 'image' | 'json';
  };
}

export interface WorkerConfig {
  concurrency: number;
  rate: { count: number; windowMs: number };
  /** Null: the limiter's default, proportional to the window. */
  rateMarginMs: number | null;
  lockoutMs: number;
  requestTimeoutMs: number;
  timeoutRetries: number;
  exitWhenIdle: boolean;
  logFile: string | null;
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
  backoffMs: number;
  breakerThreshold: number;
  probeIntervalMs: number;
  /** How long in-flight requests may take to finish after a stop signal. */
  graceMs: number;
  /** Restart consumption when jobs wait but nothing progressed for this long. */
  watchdogMs: number;
}

export const DEFAULT_API_HOST = 'https://api.stability.ai';
export const MOCK_API_IDENTITY = 'mock';

export function loadConfig(flags: CommonFlags, env: NodeJS.ProcessEnv = process.env): Config {
  const mock = flags.mock === true;
  const baseQueue = flags.queue ?? env.NIGHTSHIFT_QUEUE ?? 'nightshift';
  // Mock runs get their own queue so placeholder jobs never mix with paid ones.
  const queue = flags.queue === undefined && mock ? `${baseQueue}-mock` : baseQueue;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(queue)) {
    throw new UsageError(`--queue: "${queue}" is not a valid queue name (letters, digits, . _ -)`);
  }
  const prefix = flags.prefix ?? env.NIGHTSHIFT_PREFIX ?? '{nightshift}';
  if (!/^\{[^{}]+\}$/.test(prefix) && !/^\{[^{}]+\}[^{}]*$/.test(prefix)) {
    throw new UsageError(`--prefix: "${prefix}" must start with a {hash tag}, e.g. {nightshift}`);
  }
  const host = (env.STABILITY_API_HOST || env.API_HOST || DEFAULT_API_HOST).replace(/\/+$/, '');
  const key = env.STABILITY_API_KEY?.trim() || null;
  const accept = env.NIGHTSHIFT_ACCEPT === 'json' ? 'json' : 'image';
  return {
    redisUrl: flags.redis ?? (env.REDIS_URL || null),
    defaultRedisUrl: env.NIGHTSHIFT_DEFAULT_REDIS || 'redis://127.0.0.1:6379',
    queue,
    prefix,
    out: resolve(flags.out ?? env.NIGHTSHIFT_OUT ?? './out'),
    mock,
    logLevel: flags.logLevel ?? env.NIGHTSHIFT_LOG_LEVEL ?? 'info',
    api: { host, key, identity: mock ? MOCK_API_IDENTITY : host, accept },
  };
}

function num(flag: string, raw: string | undefined, def: number, opts: { min?: number; int?: boolean } = {}): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || (opts.int && !Number.isInteger(n)) || n < (opts.min ?? 0)) {
    throw new UsageError(`--${flag}: "${raw}" must be a${opts.int ? 'n integer' : ' number'} ≥ ${opts.min ?? 0}`);
  }
  return n;
}

/** Parses `COUNT/SECONDS`, e.g. `150/10`. */
export function parseRate(raw: string, flag = 'rate'): { count: number; windowMs: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+(?:\.\d+)?)\s*$/.exec(raw);
  if (!m || Number(m[1]) < 1 || Number(m[2]) <= 0) {
    throw new UsageError(`--${flag}: "${raw}" must look like COUNT/SECONDS, e.g. 150/10`);
  }
  return { count: Number(m[1]), windowMs: Math.round(Number(m[2]) * 1000) };
}

export function loadWorkerConfig(flags: WorkerFlags, env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const s = (flag: string, raw: string | undefined, defSeconds: number, min = 0) =>
    Math.round(num(flag, raw, defSeconds, { min }) * 1000);
  const requestTimeoutMs = s('request-timeout', flags.requestTimeout, 180, 0.01);
  return {
    concurrency: num('concurrency', flags.concurrency, 64, { min: 1, int: true }),
    rate: parseRate(flags.rate ?? env.NIGHTSHIFT_RATE ?? '150/10'),
    rateMarginMs: flags.rateMargin === undefined ? null : s('rate-margin', flags.rateMargin, 0),
    lockoutMs: s('lockout', flags.lockout, 60),
    requestTimeoutMs,
    timeoutRetries: num('timeout-retries', flags.timeoutRetries, 1, { int: true }),
    exitWhenIdle: flags.exitWhenIdle === true,
    logFile: flags.logFile ?? null,
    lockDurationMs: s('lock-duration', flags.lockDuration ?? env.NIGHTSHIFT_LOCK_DURATION, 30, 0.1),
    stalledIntervalMs: s('stalled-interval', flags.stalledInterval ?? env.NIGHTSHIFT_STALLED_INTERVAL, 30, 0.1),
    // A few crashes or forced deploys must not fail a job (a stall failure skips retries).
    maxStalledCount: num('max-stalled', flags.maxStalled, 5, { min: 1, int: true }),
    backoffMs: s('backoff', flags.backoff ?? env.NIGHTSHIFT_BACKOFF, 5, 0),
    breakerThreshold: num('breaker-threshold', flags.breakerThreshold, 20, { min: 1, int: true }),
    probeIntervalMs: s('probe-interval', flags.probeInterval ?? env.NIGHTSHIFT_PROBE_INTERVAL, 60, 0.01),
    graceMs: s('grace', flags.grace, requestTimeoutMs / 1000 + 10, 0),
    watchdogMs: s('watchdog', flags.watchdog ?? env.NIGHTSHIFT_WATCHDOG, 600, 1),
  };
}
