import { formatDuration } from '../durations.js';
import cliProgress from 'cli-progress';
import type { BatchCounts } from '../queue/batch-state.js';

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

export function progressLine(batch: string, s: ProgressSample, perSec: number, etaSec: number | null): string {
  const c = s.counts;
  const done = c.total - c.pending;
  return (
    `${batch}: ${done}/${c.total} done (${c.succeeded} ok, ${c.filtered} filtered, ${c.failed} failed), ` +
    `${(perSec * 60).toFixed(1)}/min, ETA ${formatDuration(etaSec === null ? null : etaSec * 1000)}, ${s.credits} credits`
  );
}

export interface ProgressOptions {
  batch: string;
  /** A live bar (cli-progress) when true; else a summary line every `intervalMs`, so logs stay readable. */
  tty: boolean;
  intervalMs: number;
  /** Where the non-TTY summary lines go. */
  write: (s: string) => void;
  /** Where the bar draws; default process.stderr. */
  stream?: NodeJS.WritableStream;
}

/** A live bar with rate, ETA, credits and failures on a TTY; a summary line every `intervalMs` otherwise. */
export function createProgress(opts: ProgressOptions) {
  const samples: ProgressSample[] = [];
  let lastPrint = 0;
  let bar: cliProgress.SingleBar | null = null;
  return {
    update(s: ProgressSample) {
      samples.push(s);
      while (samples.length > 2 && s.at - samples[0]!.at > 5 * 60_000) samples.shift();
      const { perSec, etaSec } = rateAndEta(samples[0]!, s);
      const c = s.counts;
      if (opts.tty) {
        const payload = {
          batch: opts.batch,
          rate: (perSec * 60).toFixed(1),
          etaText: formatDuration(etaSec === null ? null : etaSec * 1000),
          credits: s.credits,
          ok: c.succeeded,
          filtered: c.filtered,
          failed: c.failed,
        };
        if (bar === null) {
          bar = new cliProgress.SingleBar({
            format:
              '{batch} {bar} {value}/{total} | {ok} ok, {filtered} filtered, {failed} failed | {rate}/min | ETA {etaText} | {credits} credits',
            barCompleteChar: '█',
            barIncompleteChar: '░',
            barsize: 24,
            hideCursor: true,
            fps: 4,
            stream: opts.stream ?? process.stderr,
          });
          bar.start(c.total, c.total - c.pending, payload);
        } else {
          bar.setTotal(c.total); // `run` may add jobs to a batch that is already running
          bar.update(c.total - c.pending, payload);
        }
      } else if (s.at - lastPrint >= opts.intervalMs) {
        lastPrint = s.at;
        opts.write(`${progressLine(opts.batch, s, perSec, etaSec)}\n`);
      }
    },
    end() {
      bar?.stop();
      bar = null;
    },
  };
}
