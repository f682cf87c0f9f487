import { UsageError } from '../errors.js';

/**
 * Parsers for setting values, shared by every flag and environment variable. Each takes the raw
 * text and the name it came from (`--rate` or `NIGHTSHIFT_RATE`), so an error names what to fix.
 * Only plain decimal numbers are accepted: `0x400`, `1e3` and `''` are usage errors, never a
 * silently different value.
 */

/** The longest duration any flag takes: a day. Node's timers hold about 24.8 days. */
export const MAX_DURATION_S = 24 * 3600;

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

function shown(raw: string): string {
  const s = JSON.stringify(raw);
  return s.length > 60 ? `${s.slice(0, 57)}…"` : s;
}

export interface NumberBounds {
  min?: number;
  max?: number;
}

function bounds(b: NumberBounds): string {
  if (b.min !== undefined && b.max !== undefined) return ` from ${b.min} to ${b.max}`;
  if (b.min !== undefined) return ` ≥ ${b.min}`;
  if (b.max !== undefined) return ` ≤ ${b.max}`;
  return '';
}

function inBounds(n: number, b: NumberBounds): boolean {
  return (b.min === undefined || n >= b.min) && (b.max === undefined || n <= b.max);
}

export function parseInteger(raw: string, name: string, b: NumberBounds = {}): number {
  const t = raw.trim();
  const n = INTEGER.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n) || !inBounds(n, b)) {
    throw new UsageError(`${name}: ${shown(raw)} must be a whole number${bounds(b)}`);
  }
  return n;
}

export function parseDecimal(raw: string, name: string, b: NumberBounds = {}): number {
  const t = raw.trim();
  const n = DECIMAL.test(t) ? Number(t) : NaN;
  if (!Number.isFinite(n) || !inBounds(n, b))
    throw new UsageError(`${name}: ${shown(raw)} must be a number${bounds(b)}`);
  return n;
}

/** Seconds (decimals allowed) to whole milliseconds, at most a day. */
export function parseSeconds(raw: string, name: string, min = 0): number {
  const t = raw.trim();
  const n = DECIMAL.test(t) ? Number(t) : NaN;
  if (!Number.isFinite(n) || n < min || n > MAX_DURATION_S) {
    throw new UsageError(`${name}: ${shown(raw)} must be a number of seconds from ${min} to ${MAX_DURATION_S} (24 h)`);
  }
  return Math.round(n * 1000);
}

/** `COUNT/SECONDS`, e.g. `150/10`. */
export function parseRate(raw: string, name = '--rate'): { count: number; windowMs: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+(?:\.\d+)?)\s*$/.exec(raw);
  const count = m ? Number(m[1]) : NaN;
  const seconds = m ? Number(m[2]) : NaN;
  if (!Number.isSafeInteger(count) || count < 1 || !(seconds > 0) || seconds > MAX_DURATION_S) {
    throw new UsageError(`${name}: ${shown(raw)} must look like COUNT/SECONDS, e.g. 150/10 (at most a day)`);
  }
  return { count, windowMs: Math.round(seconds * 1000) };
}

export function parseChoice<const T extends string>(choices: readonly T[]) {
  return (raw: string, name: string): T => {
    const t = raw.trim();
    if (!(choices as readonly string[]).includes(t)) {
      throw new UsageError(`${name}: ${shown(raw)} must be one of ${choices.join(', ')}`);
    }
    return t as T;
  };
}

export function parseText(raw: string, name: string): string {
  if (raw.trim() === '') throw new UsageError(`${name}: must not be empty`);
  return raw;
}

/** Environment switches: 1/true/yes/on or 0/false/no/off (flags arrive as `true`). */
export function parseSwitch(raw: string, name: string): boolean {
  const t = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  throw new UsageError(`${name}: ${shown(raw)} must be 1/true/yes/on or 0/false/no/off`);
}

export function parsePort(raw: string, name: string): number {
  return parseInteger(raw, name, { min: 0, max: 65535 });
}
