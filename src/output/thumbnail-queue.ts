import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { loadSharp, makeThumbnail } from './thumbnails.js';

/**
 * Thumbnails made in the background as a worker writes images, so the gallery is nearly complete
 * when a batch ends and the final report only makes what is missing. It is off the billing path:
 * `add` never throws and never waits, a failure is a log line (the report tries again and shows a
 * "no preview" tile if it fails too), and work that cannot keep up is dropped rather than queued
 * without bound, since the report makes whatever is left. Thumbnails wait while the worker is busy
 * (a decode costs more CPU than a whole job at the API's speed): a saturated worker spends its cores
 * on the images it pays for, and catches up on previews when it has time again.
 */

export interface ThumbnailQueue {
  /** Queues the thumbnail of `file` (relative to the batch folder `dir`). */
  add(dir: string, file: string): void;
  /** Resolves when nothing is queued or being made (for tests and orderly shutdown). */
  idle(): Promise<void>;
  /** Drops what is queued and waits for the thumbnails being made. */
  stop(): Promise<void>;
}

export interface ThumbnailQueueOptions {
  logger: Logger;
  /** Thumbnails made at once. Default 1: a decode holds the whole image, and sharp adds its own threads. */
  concurrency?: number;
  /** Most thumbnails waiting; beyond this they are left to the report. Default 1000 (a name each). */
  maxPending?: number;
  /** Makes one thumbnail (tests inject failures); default: sharp, 256 px WebP. */
  make?: (dir: string, file: string) => Promise<unknown>;
  /** True while thumbnails should wait; default: `loopBusy()`. */
  busy?: () => boolean;
  /** How long to wait before looking again once busy (ms). Default 200. */
  recheckMs?: number;
}

/**
 * Whether this process' event loop was busy for more than `threshold` of the time since the last
 * judgement, judged again once at least `windowMs` has passed (until then the last answer stands).
 * At the API's real latency a worker's loop is nearly idle; it is busy only when answers come faster
 * than it can write them.
 */
export function loopBusy(opts: { threshold?: number; windowMs?: number } = {}): () => boolean {
  const threshold = opts.threshold ?? 0.5;
  const windowMs = opts.windowMs ?? 200;
  let mark = performance.eventLoopUtilization();
  let busy = false;
  return () => {
    const since = performance.eventLoopUtilization(mark);
    if (since.idle + since.active >= windowMs) {
      busy = since.utilization > threshold;
      mark = performance.eventLoopUtilization();
    }
    return busy;
  };
}

/**
 * sharp as a worker uses it: no operation cache (each image is thumbnailed once) and one libvips
 * thread per image, so thumbnails add little to a worker's memory and leave the cores to the jobs.
 */
async function workerSharp(): ReturnType<typeof loadSharp> {
  const sharp = await loadSharp();
  sharp.cache(false);
  sharp.concurrency(1);
  return sharp;
}

function defaultMake(): (dir: string, file: string) => Promise<unknown> {
  let sharp: ReturnType<typeof loadSharp> | null = null;
  return async (dir, file) => makeThumbnail(await (sharp ??= workerSharp()), dir, file);
}

export function createThumbnailQueue(opts: ThumbnailQueueOptions): ThumbnailQueue {
  const make = opts.make ?? defaultMake();
  const limit = Math.max(1, opts.concurrency ?? 1);
  const maxPending = opts.maxPending ?? 1000;
  const busy = opts.busy ?? loopBusy();
  const recheckMs = opts.recheckMs ?? 200;
  let recheck: NodeJS.Timeout | null = null;
  const pending: Array<{ dir: string; file: string }> = [];
  let running = 0;
  let stopped = false;
  let waiters: Array<() => void> = [];

  const settle = () => {
    if (running > 0 || pending.length > 0) return;
    for (const w of waiters) w();
    waiters = [];
  };
  const pump = () => {
    if (stopped || pending.length === 0 || running >= limit) return;
    if (busy()) {
      // Unref'd: previews waiting for a quiet moment never keep a finished worker alive.
      recheck ??= setTimeout(() => {
        recheck = null;
        pump();
      }, recheckMs).unref();
      return;
    }
    while (!stopped && running < limit && pending.length > 0) {
      const { dir, file } = pending.shift()!;
      running++;
      // Through a promise, so even a make that throws at once is only a log line.
      Promise.resolve()
        .then(() => make(dir, file))
        .catch((err: unknown) => {
          const message = err instanceof Error ? err.message : String(err);
          opts.logger.warn({ file, err: message }, 'no thumbnail yet; the report will try again');
        })
        .finally(() => {
          running--;
          pump();
          settle();
        });
    }
  };
  return {
    add(dir, file) {
      if (stopped || pending.length >= maxPending) return;
      pending.push({ dir, file });
      // Later, so the job that wrote the image finishes first.
      setImmediate(pump);
    },
    idle: () =>
      new Promise<void>((resolve) => (running === 0 && pending.length === 0 ? resolve() : waiters.push(resolve))),
    async stop() {
      stopped = true;
      pending.length = 0;
      if (recheck) clearTimeout(recheck);
      settle();
      await new Promise<void>((resolve) => (running === 0 ? resolve() : waiters.push(resolve)));
    },
  };
}
