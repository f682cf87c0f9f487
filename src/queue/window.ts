import { UsageError } from '../errors.js';
import { formatDuration } from '../durations.js';

/**
 * A run window: the local hours during which workers take jobs, e.g. `22:00-07:00` (it may cross
 * midnight). Times are seconds after local midnight; dates are computed in local time, so a
 * daylight-saving change moves the window with the wall clock, as a person expects.
 */
export interface RunWindow {
  /** Seconds after local midnight when the window opens. */
  start: number;
  /** Seconds after local midnight when it closes (smaller than start when it crosses midnight). */
  end: number;
  /** As given, for messages. */
  text: string;
}

const TIME = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/;

function parseTime(raw: string, name: string, whole: string): number {
  const m = TIME.exec(raw.trim());
  const [h, min, s] = m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : [NaN, NaN, NaN];
  if (!m || h > 23 || min > 59 || s > 59) {
    throw new UsageError(`${name}: "${whole}" must be START-END in local time, HH:MM or HH:MM:SS, e.g. 22:00-07:00`);
  }
  return h * 3600 + min * 60 + s;
}

export function parseWindow(raw: string, name: string): RunWindow {
  const parts = raw.split('-');
  if (parts.length !== 2) throw new UsageError(`${name}: "${raw}" must be START-END, e.g. 22:00-07:00`);
  const start = parseTime(parts[0]!, name, raw);
  const end = parseTime(parts[1]!, name, raw);
  if (start === end)
    throw new UsageError(`${name}: "${raw}" opens and closes at the same time; leave --window out to work all day`);
  return { start, end, text: `${parts[0]!.trim()}-${parts[1]!.trim()}` };
}

/** The local date at `secondsOfDay` on the day of `day` (plus `addDays`). */
function at(day: Date, secondsOfDay: number, addDays = 0): Date {
  const d = new Date(day.getFullYear(), day.getMonth(), day.getDate() + addDays, 0, 0, 0, 0);
  d.setHours(Math.floor(secondsOfDay / 3600), Math.floor((secondsOfDay % 3600) / 60), secondsOfDay % 60);
  return d;
}

export interface WindowState {
  open: boolean;
  /** When it next opens (when closed) or closes (when open). */
  changesAt: Date;
}

/** Whether the window is open at `now`, and when that changes. */
export function windowState(w: RunWindow, now: Date): WindowState {
  const sod = now.getHours() * 3600 + now.getMinutes() * 60 + now.getSeconds() + now.getMilliseconds() / 1000;
  const crosses = w.end < w.start;
  const open = crosses ? sod >= w.start || sod < w.end : sod >= w.start && sod < w.end;
  if (open) {
    // Closing today, or tomorrow when it crosses midnight and we are before midnight.
    const closesTomorrow = crosses && sod >= w.start;
    return { open, changesAt: at(now, w.end, closesTomorrow ? 1 : 0) };
  }
  return { open, changesAt: at(now, w.start, sod >= w.start ? 1 : 0) };
}

/** Seconds of work the window still offers from `now`: what is left of it if open, else a whole window. */
export function windowSecondsLeft(w: RunWindow, now: Date): number {
  const s = windowState(w, now);
  if (s.open) return Math.max(0, (s.changesAt.getTime() - now.getTime()) / 1000);
  const length = w.end > w.start ? w.end - w.start : 24 * 3600 - w.start + w.end;
  return length;
}

export interface BatchEstimate {
  jobs: number;
  /** Images per second the shared rate limit allows. */
  per_second: number;
  /** Seconds the jobs take at that rate. */
  seconds: number;
  window: string | null;
  /** Seconds of work the window offers from now (what is left of it, or a whole one while closed). */
  window_seconds: number | null;
  /** Null without a window. */
  fits: boolean | null;
  /** Seconds until a closed window opens; 0 while open, null without a window. */
  opens_in_seconds: number | null;
}

/** How long `jobs` take at the rate limit, and whether that fits the run window. */
export function estimateBatch(o: {
  jobs: number;
  rate: { count: number; windowMs: number };
  window: RunWindow | null;
  now: Date;
}): BatchEstimate {
  const perSecond = o.rate.count / (o.rate.windowMs / 1000);
  const seconds = o.jobs / perSecond;
  const left = o.window ? windowSecondsLeft(o.window, o.now) : null;
  const state = o.window ? windowState(o.window, o.now) : null;
  return {
    jobs: o.jobs,
    per_second: Math.round(perSecond * 100) / 100,
    seconds: Math.ceil(seconds),
    window: o.window?.text ?? null,
    window_seconds: left === null ? null : Math.round(left),
    fits: left === null ? null : seconds <= left,
    opens_in_seconds:
      state === null ? null : state.open ? 0 : Math.round((state.changesAt.getTime() - o.now.getTime()) / 1000),
  };
}

/** `about 3.2 h at 15 images/s; the window leaves 6.5 h` — whether a batch fits the night. */
export function formatEstimate(e: BatchEstimate, open: boolean): string {
  const base = `${e.jobs} jobs: about ${formatDuration(e.seconds * 1000, 'rough')} at ${e.per_second} images/s`;
  if (e.window === null || e.window_seconds === null) return base;
  const verdict = e.fits ? '' : ' — more than the window: the rest waits for the next one';
  const span = formatDuration(e.window_seconds * 1000, 'rough');
  // A closed window: say when the work starts, not only how long the night is.
  const when =
    open || !e.opens_in_seconds ? 'leaves' : `opens in ${formatDuration(e.opens_in_seconds * 1000, 'rough')} and gives`;
  return `${base}; the window ${e.window} ${when} ${span}${verdict}`;
}
