/**
 * `nightshift mock-api` option strings → MockApiOptions. Pure: commander hands us strings
 * (and `true` for bare flags); host and port are wired by the command itself.
 */
import { UsageError } from '../errors.js';
import { FAULT_NAMES } from './hostile.js';
import type { MockApiOptions } from './types.js';

export type MockApiCliInput = Record<string, string | boolean | undefined>;

const DEFAULT_RATE = { count: 150, windowMs: 10_000 };
const DEFAULT_LOCKOUT_MS = 60_000;

function str(raw: MockApiCliInput, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === false) return undefined;
  if (v === true) throw new UsageError(`--${flag(key)} needs a value`);
  return v.trim();
}

const flag = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function num(raw: MockApiCliInput, key: string, check: (n: number) => boolean, what: string): number | undefined {
  const s = str(raw, key);
  if (s === undefined) return undefined;
  const n = s === '' ? NaN : Number(s);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${flag(key)} ${s}: expected ${what}`);
  return n;
}

/** `1500000`, `1.5m`, `1500k` (k = 1024, m = 1024²). */
export function parseByteSize(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(k|kb|kib|m|mb|mib)?$/i.exec(s.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  const mult = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1;
  return Math.round(Number(m[1]) * mult);
}

export function parseMockApiOptions(raw: MockApiCliInput): MockApiOptions {
  const out: MockApiOptions = {};

  const latency = str(raw, 'latency');
  if (latency !== undefined) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(latency);
    if (!m) throw new UsageError(`--latency ${latency}: expected MS or MIN-MAX (milliseconds)`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? undefined : Number(m[2]);
    if (hi !== undefined && hi < lo) throw new UsageError(`--latency ${latency}: MAX must not be below MIN`);
    out.latencyMs = hi === undefined ? lo : [lo, hi];
  }

  const rate = str(raw, 'rate');
  const lockout = num(raw, 'lockout', (n) => n >= 0, 'seconds (>= 0)');
  const retryAfter = raw.retryAfter === true || raw.retryAfter === 'true';
  if (rate !== undefined || lockout !== undefined || retryAfter) {
    let limit = DEFAULT_RATE;
    if (rate !== undefined) {
      const m = /^(\d+)\s*\/\s*(\d+(?:\.\d+)?)$/.exec(rate);
      if (!m || Number(m[1]) < 1 || Number(m[2]) <= 0)
        throw new UsageError(`--rate ${rate}: expected COUNT/SECONDS, e.g. 150/10`);
      limit = { count: Number(m[1]), windowMs: Math.round(Number(m[2]) * 1000) };
    }
    out.rateLimit = {
      ...limit,
      lockoutMs: lockout === undefined ? DEFAULT_LOCKOUT_MS : Math.round(lockout * 1000),
      retryAfter,
    };
  }

  const failRate = num(raw, 'failRate', (n) => n >= 0 && n <= 1, 'a probability between 0 and 1');
  if (failRate !== undefined) out.failRate = failRate;
  const balance = num(raw, 'balance', (n) => n >= 0, 'credits (>= 0)');
  if (balance !== undefined) out.balance = balance;

  const apiKey = str(raw, 'apiKey');
  if (apiKey !== undefined) {
    if (apiKey === '') throw new UsageError('--api-key: must not be empty');
    out.apiKey = apiKey;
  }

  const imageBytes = str(raw, 'imageBytes');
  if (imageBytes !== undefined) {
    const n = parseByteSize(imageBytes);
    if (n === undefined)
      throw new UsageError(`--image-bytes ${imageBytes}: expected a size in bytes, e.g. 1500000 or 1.5m`);
    out.imageBytes = n;
  }

  const faultName = str(raw, 'fault');
  if (faultName !== undefined) {
    const fault = FAULT_NAMES[faultName];
    if (!fault) throw new UsageError(`--fault ${faultName}: expected one of ${Object.keys(FAULT_NAMES).join(', ')}`);
    // Generations only: balance checks and engine lists still answer, so a run gets as far as its requests.
    out.fault = (ctx) => (ctx.model === '' ? undefined : fault);
  }
  return out;
}
