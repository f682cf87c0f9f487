import { Worker, type Job, type Processor } from 'bullmq';
import type { Logger } from 'pino';
import type { WorkerConfig } from '../src/config.js';
import type { JobData } from '../src/queue/job-data.js';
import { backoffDelay } from '../src/queue/backoff.js';
import { createRedis } from '../src/redis/connect.js';

export interface ConsumerOptions {
  queueName: string;
  prefix: string;
  redisUrl: string;
  wc: WorkerConfig;
  processor: Processor<JobData>;
  logger: Logger;
  now: () => number;
  /** A job BullMQ failed on its own (a stall beyond the limit), for its final record. */
  onFailed: (job: Job<JobData> | undefined, err: Error) => void;
  /** Start without taking jobs (outside the run window): not even one job before `release`. */
  held?: boolean;
}

export interface Consumer {
  /** When a job last started or ended here. */
  lastProgress(): number;
  /** Requests in flight from now on (auto concurrency). */
  setConcurrency(n: number): void;
  /** Takes no new jobs (those in flight go on) until `release`. */
  hold(): void;
  release(): void;
  /** True while held: an idle consumer is then expected, not wedged. */
  isHeld(): boolean;
  /** Replaces the BullMQ worker with a fresh one (its in-flight jobs stall and come back). */
  restart(): Promise<void>;
  /** Stops taking jobs and waits for the in-flight ones; `force` abandons them instead. */
  close(force?: boolean): Promise<void>;
}

/** The BullMQ worker taking jobs off the queue, replaceable when it wedges. */
export function startConsumer(o: ConsumerOptions): Consumer {
  let lastProgress = o.now();
  let concurrency = o.wc.concurrency;
  const make = () => {
    const w = new Worker<JobData>(o.queueName, o.processor, {
      connection: createRedis(o.redisUrl),
      prefix: o.prefix,
      concurrency,
      lockDuration: o.wc.lockDurationMs,
      stalledInterval: o.wc.stalledIntervalMs,
      maxStalledCount: o.wc.maxStalledCount,
      settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, o.wc.backoffMs, Math.random) },
      autorun: false,
    });
    // Without an error listener a worker may stop processing.
    w.on('error', (err) => o.logger.warn({ err: err.message }, 'worker error'));
    w.on('failed', (job, err) => {
      lastProgress = o.now();
      o.onFailed(job, err);
    });
    w.on('completed', () => (lastProgress = o.now()));
    w.on('active', () => (lastProgress = o.now()));
    return w;
  };
  let held = o.held === true;
  /** Whether the current BullMQ worker's loop has been started (it then pauses and resumes). */
  let running = false;
  const start = (w: Worker<JobData>) => {
    running = true;
    w.run().catch((err: Error) => o.logger.error({ err: err.message }, 'worker loop ended'));
  };
  let worker = make();
  if (!held) start(worker);
  return {
    lastProgress: () => lastProgress,
    setConcurrency(n) {
      const next = Math.max(1, Math.round(n));
      const raised = next > concurrency;
      concurrency = next;
      worker.concurrency = next;
      if (raised) wakeLoop(worker);
    },
    hold() {
      if (held) return;
      held = true;
      // true: do not wait for the jobs in flight; they finish on their own.
      if (running) void worker.pause(true).catch(() => {});
    },
    release() {
      if (!held) return;
      held = false;
      lastProgress = o.now();
      if (running) void worker.resume().catch(() => {});
      else start(worker);
    },
    isHeld: () => held,
    async restart() {
      const old = worker;
      worker = make();
      running = false;
      if (!held) start(worker);
      lastProgress = o.now();
      await old.close(true).catch(() => {});
    },
    close: (force = false) => worker.close(force),
  };
}

/**
 * BullMQ's loop looks at its concurrency again only when a job ends: with every slot busy at 8 s per
 * image, a raise would wait 8 s to fill, and the ramp to the rate limit would take a minute. An
 * item settled at once wakes it, as BullMQ's own resume() does (bullmq is pinned to that version).
 */
function wakeLoop(w: Worker<JobData>): void {
  (w as unknown as { mainLoopQueue?: { add(p: Promise<unknown>): void } | null }).mainLoopQueue?.add(Promise.resolve());
}
