/**
 * `nightshift mock-api` option strings → MockApiOptions. Pure: commander hands us strings
 * (and `true` for bare flags); host and port are wired by the command itself.
 */
import { parseDecimal, parseInteger, parseRate, parseSeconds, type NumberBounds } from '../config/parse.js';
import { UsageError } from '../errors.js';
import { API_RATE_LIMIT } from '../models.js';
import { FAULT_NAMES } from './hostile.js';
import type { MockApiOptions } from './types.js';

export type MockApiCliInput = Record<string, string | boolean | undefined>;

const DEFAULT_RATE = { ...API_RATE_LIMIT };
const DEFAULT_LOCKOUT_MS = 60_000;

function str(raw: MockApiCliInput, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === false) return undefined;
  if (v === true) throw new UsageError(`--${flag(key)} needs a value`);
  return v.trim();
}

const flag = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function num(raw: MockApiCliInput, key: string, b: NumberBounds): number | undefined {
  const s = str(raw, key);
  return s === undefined ? undefined : parseDecimal(s, `--${flag(key)}`, b);
}

/** `MS` or `MIN-MAX`, whole milliseconds. */
function parseLatency(s: string): number | [number, number] {
  const parts = s.split('-');
  if (parts.length > 2) throw new UsageError(`--latency ${s}: expected MS or MIN-MAX (milliseconds)`);
  const [lo, hi] = parts.map((p) => parseInteger(p, '--latency', { min: 0 })) as [number, number | undefined];
  if (hi === undefined) return lo;
  if (hi < lo) throw new UsageError(`--latency ${s}: MAX must not be below MIN`);
  return [lo, hi];
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
  if (latency !== undefined) out.latencyMs = parseLatency(latency);

  const rate = str(raw, 'rate');
  const lockout = str(raw, 'lockout');
  const retryAfter = raw.retryAfter === true || raw.retryAfter === 'true';
  if (rate !== undefined || lockout !== undefined || retryAfter) {
    const limit = rate === undefined ? DEFAULT_RATE : parseRate(rate, '--rate');
    out.rateLimit = {
      ...limit,
      lockoutMs: lockout === undefined ? DEFAULT_LOCKOUT_MS : parseSeconds(lockout, '--lockout'),
      retryAfter,
    };
  }

  const failRate = num(raw, 'failRate', { min: 0, max: 1 });
  if (failRate !== undefined) out.failRate = failRate;
  const balance = num(raw, 'balance', { min: 0 });
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
