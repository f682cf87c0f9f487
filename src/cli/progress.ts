import type { BatchCounts } from '../batch-state.js';

export interface ProgressSample {
  counts: BatchCounts;
  credits: number;
  at: number;
}

/** Jobs per second over the samples' span, and the time left at that rate. */
export function rateAndEta(first: ProgressSample, last: ProgressSample): { perSec: number; etaSec: number | null } {
  const done = (c: BatchCounts) => c.total - c.pending;
  const dt = (last.at - first.at) / 1000;
  const perSec = dt > 0 ? (done(last.counts) - done(first.counts)) / dt : 0;
  return { perSec, etaSec: perSec > 0 ? last.counts.pending / perSec : null };
}

export function formatDuration(sec: number | null): string {
  if (sec === null || !Number.isFinite(sec)) return '--';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s % 60}s`;
}

export function progressLine(batch: string, s: ProgressSample, perSec: number, etaSec: number | null): string {
  const c = s.counts;
  const done = c.total - c.pending;
  return `${batch}: ${done}/${c.total} done (${c.succeeded} ok, ${c.filtered} filtered, ${c.failed} failed), ` +
    `${(perSec * 60).toFixed(1)}/min, ETA ${formatDuration(etaSec)}, ${s.credits} credits`;
}

/**
 * A live bar on a TTY; a summary line every `intervalMs` otherwise (logs stay readable).
 */
export function createProgress(opts: { batch: string; tty: boolean; intervalMs: number; write: (s: string) => void }) {
  const samples: ProgressSample[] = [];
  let lastPrint = 0;
  return {
    update(s: ProgressSample) {
      samples.push(s);
      while (samples.length > 2 && s.at - samples[0]!.at > 5 * 60_000) samples.shift();
      const { perSec, etaSec } = rateAndEta(samples[0]!, s);
      if (opts.tty) {
        const c = s.counts;
        const frac = c.total ? (c.total - c.pending) / c.total : 1;
        const width = 24;
        const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
        opts.write(`\r${bar} ${progressLine(opts.batch, s, perSec, etaSec)}\x1b[K`);
      } else if (s.at - lastPrint >= opts.intervalMs) {
        lastPrint = s.at;
        opts.write(`${progressLine(opts.batch, s, perSec, etaSec)}\n`);
      }
    },
    end() {
      if (opts.tty) opts.write('\n');
    },
  };
}
