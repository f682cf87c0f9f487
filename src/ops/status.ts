import { z } from 'zod';
import type { QueueContext } from './context.js';
import { formatDuration } from '../durations.js';
import type { PauseRecord } from '../queue/pause.js';
import type { WorkerEntry } from '../queue/worker-registry.js';
import { jobRecordOrNull } from './job-record.js';
import { openOutput } from '../output/storage/open.js';
import type { OutputRoot } from '../output/storage/types.js';
import { bullKeys } from '../redis/keys.js';
import { createRateLimiter, keyLockout } from '../billing/rate-limiter.js';

export interface StatusOptions {
  /** The output folder, where failed jobs' sidecars carry their error class (absent: failedReason only). */
  out?: string;
  /** The output when it is not only a folder (`--out s3://…`): the sidecars are read from it instead. */
  output?: OutputRoot;
  batch?: string;
  /**
   * The workers' `--rate`, and the id (`apiKeyId`) of the command's own key when it has one; the
   * workers' registered key is used otherwise. Absent: no rate figures.
   */
  rate?: { keyId?: string; count: number; windowMs: number };
  /**
   * True when `rate` is only the default (no `--rate`, no environment): the limit a live worker of
   * that key registered is then the one shown, since the workers may have been given another.
   */
  rateIsDefault?: boolean;
  /** Minutes of finished jobs the throughput is averaged over. Default 5. */
  throughputMinutes?: number;
}

export interface ErrorSummary {
  count: number;
  last: { job: string; batch: string | null; message: string; at: string | null };
}

export interface QueueStatus {
  queue: string;
  paused: boolean;
  paused_by: PauseRecord | null;
  counts: { waiting: number; active: number; delayed: number; completed: number; failed: number };
  batches: Record<
    string,
    {
      total: number;
      succeeded: number;
      filtered: number;
      failed: number;
      cancelled: number;
      pending: number;
      credits: number;
      maybe_billed_credits: number;
      budget: number | null;
    }
  >;
  /** Jobs that reached completed or failed in the last `minutes` (BullMQ scores both sets by finish time). */
  throughput: { minutes: number; finished: number; per_minute: number; last_minute: number };
  /** Seconds until the pending jobs are done at the current throughput; null when nothing moves or nothing is left. */
  eta_s: number | null;
  /** Among the most recent failed jobs, per error class. */
  last_errors: Record<string, ErrorSummary>;
  rate: { count: number; window_s: number; used_in_window: number; lockout_remaining_ms: number } | null;
  /** Remaining 429 lockout of the key the workers use (the command's own key when no worker runs); 0 when none. */
  lockout_ms: number;
  /** The live workers taking this queue's jobs, each with its current concurrency. */
  workers: WorkerEntry[];
  hints: string[];
}

/** Failed jobs looked at for `last_errors`: enough to see a pattern, few enough for `--watch`. */
const RECENT_FAILED = 20;

async function redisNow(ctx: QueueContext): Promise<number> {
  const [s, us] = await ctx.redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** The numbers `status` prints (`status --json`): counts, batches, throughput, ETA, recent errors, workers and hints. */
export async function queueStatus(ctx: QueueContext, opts: StatusOptions): Promise<QueueStatus> {
  const { queueName, queuePrefix: prefix } = ctx;
  const c = await ctx.queue.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'completed', 'failed');
  const names = opts.batch ? [opts.batch] : await ctx.state.batches();
  const batches: QueueStatus['batches'] = {};
  for (const name of names.sort()) {
    const meta = await ctx.state.getMeta(name);
    if (!opts.batch && meta.queue && meta.queue !== queueName) continue;
    const counts = await ctx.state.counts(name);
    const l = await ctx.ledger.get(name);
    batches[name] = { ...counts, credits: l.billed, maybe_billed_credits: l.maybeBilled, budget: l.budget };
  }
  const counts = {
    waiting: (c.wait ?? 0) + (c.prioritized ?? 0),
    active: c.active ?? 0,
    delayed: c.delayed ?? 0,
    completed: c.completed ?? 0,
    failed: c.failed ?? 0,
  };

  const now = await redisNow(ctx);
  const minutes = opts.throughputMinutes ?? 5;
  const finishedSince = async (ms: number) => {
    const from = `(${now - ms}`;
    const [done, failed] = await Promise.all([
      ctx.redis.zcount(bullKeys.finished(prefix, queueName, 'completed'), from, '+inf'),
      ctx.redis.zcount(bullKeys.finished(prefix, queueName, 'failed'), from, '+inf'),
    ]);
    return done + failed;
  };
  const finished = await finishedSince(minutes * 60_000);
  const throughput = {
    minutes,
    finished,
    per_minute: round(finished / minutes),
    last_minute: await finishedSince(60_000),
  };
  const left = counts.waiting + counts.active + counts.delayed;
  const eta_s = left > 0 && finished > 0 ? Math.ceil((left / finished) * minutes * 60) : null;

  const workers = await ctx.workers.list(now);
  const workerKeys = [...new Set(workers.flatMap((w) => (w.key_id ? [w.key_id] : [])))];
  const ownKey = opts.rate?.keyId;
  const rateKey = ownKey ?? workerKeys[0];
  const limit = opts.rateIsDefault ? (registeredRate(workers, rateKey) ?? opts.rate) : opts.rate;
  const rate = limit && rateKey ? await rateFigures(ctx, { ...limit, keyId: rateKey }) : null;
  const s: QueueStatus = {
    queue: queueName,
    paused: await ctx.queue.isPaused(),
    paused_by: await ctx.control.pausedBy(),
    counts,
    batches,
    throughput,
    eta_s,
    last_errors: await lastErrors(ctx, opts.output ?? (opts.out ? openOutput({ out: opts.out, s3: null }) : undefined)),
    rate,
    lockout_ms: await lockoutOf(ctx, workerKeys.length > 0 ? workerKeys : ownKey ? [ownKey] : []),
    workers,
    hints: [],
  };
  s.hints = hintsFor(s);
  return s;
}

const registeredRateSchema = z.object({ count: z.number().int().positive(), window_ms: z.number().positive() });

/** The rate limit the newest live worker of this key registered, if one did. */
function registeredRate(workers: WorkerEntry[], keyId: string | undefined): { count: number; windowMs: number } | null {
  for (const w of workers) {
    const r = registeredRateSchema.safeParse(w.rate);
    if (w.key_id === keyId && r.success) return { count: r.data.count, windowMs: r.data.window_ms };
  }
  return null;
}

/** How much of the shared limit was used lately, as the limiter itself counts it. */
async function rateFigures(
  ctx: QueueContext,
  r: { keyId: string; count: number; windowMs: number },
): Promise<QueueStatus['rate']> {
  const limiter = createRateLimiter({ redis: ctx.redis, prefix: ctx.prefix, ...r });
  const [used, lockout] = await Promise.all([limiter.inWindow(), limiter.lockoutRemainingMs()]);
  return { count: r.count, window_s: r.windowMs / 1000, used_in_window: used, lockout_remaining_ms: lockout };
}

/** The longest lockout among these keys. */
async function lockoutOf(ctx: QueueContext, keyIds: string[]): Promise<number> {
  const left = await Promise.all(keyIds.map((k) => keyLockout(ctx.redis, ctx.prefix, k).remainingMs()));
  return Math.max(0, ...left);
}

/** Error classes of the newest failed jobs: the sidecar's record when the output folder is readable, else BullMQ's failedReason. */
async function lastErrors(ctx: QueueContext, output: OutputRoot | undefined): Promise<Record<string, ErrorSummary>> {
  const jobs = await ctx.queue.getFailed(0, RECENT_FAILED - 1);
  const result: Record<string, ErrorSummary> = {};
  for (const job of jobs) {
    if (!job?.id) continue;
    const data = job.data as { batch?: string; file?: string; api?: string } | undefined;
    const record =
      output && data?.batch && data.file && data.api
        ? await jobRecordOrNull(output, { api: data.api, batch: data.batch, file: data.file })
        : null;
    const cls = record?.error?.class ?? 'unknown';
    const entry = (result[cls] ??= {
      count: 0,
      last: {
        job: job.id,
        batch: data?.batch ?? null,
        message: record?.error?.message ?? job.failedReason ?? '',
        at: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
      },
    });
    entry.count++;
  }
  return result;
}

/** Says what bounds throughput when the numbers show it. */
function hintsFor(s: QueueStatus): string[] {
  const hints: string[] = [];
  const backlog = s.counts.waiting > 0;
  const concurrency = s.workers.reduce((n, w) => n + w.concurrency, 0);
  if (s.lockout_ms > 0) {
    hints.push(
      `the API rate-limited this key: every worker waits ${Math.ceil(s.lockout_ms / 1000)} s more (\`nightshift resume\` ends it now)`,
    );
  }
  if (s.rate && s.workers.length > 0 && backlog && !s.paused && s.lockout_ms === 0) {
    const limit = s.rate.count;
    if (s.rate.used_in_window < 0.9 * limit && s.counts.active >= concurrency) {
      hints.push(
        `concurrency, not the rate limit, bounds throughput: all ${concurrency} slots of ${s.workers.length} worker(s) are busy ` +
          `but only ${s.rate.used_in_window} of ${limit} requests were sent in the last ${s.rate.window_s} s; ` +
          (s.workers.every((w) => w.bound === 'maximum')
            ? 'start more workers or raise --max-concurrency'
            : 'start more workers or raise --concurrency'),
      );
    } else if (s.rate.used_in_window >= 0.9 * limit) {
      hints.push(`the rate limit (${limit}/${s.rate.window_s} s) bounds throughput; more workers would not help`);
    }
  }
  const windows = s.workers.map(windowOf);
  if (backlog && windows.length > 0 && windows.every((w) => w !== null && !w.open)) {
    const next = windows.map((w) => w!.changes_at).sort()[0]!;
    hints.push(
      `every worker is outside its run window (${windows[0]!.text}); jobs are taken again at ${new Date(next).toTimeString().slice(0, 5)}`,
    );
  }
  if (s.paused && s.paused_by)
    hints.push(`paused by ${s.paused_by.reason}: ${s.paused_by.message}; \`nightshift resume\` after fixing it`);
  return hints;
}

interface WindowNote {
  text: string;
  open: boolean;
  changes_at: string;
}

function windowOf(w: WorkerEntry): WindowNote | null {
  const v = w.window as Partial<WindowNote> | undefined;
  return v && typeof v.text === 'string' && typeof v.open === 'boolean' && typeof v.changes_at === 'string'
    ? (v as WindowNote)
    : null;
}

/** `host:123:ab12: concurrency 138 (rate limit), outside its window 22:00-07:00 until 22:00`. */
function describeWorker(w: WorkerEntry): string {
  const bound = typeof w.bound === 'string' && w.bound !== 'fixed' ? ` (bound: ${w.bound})` : '';
  const win = windowOf(w);
  const at = win ? new Date(win.changes_at).toTimeString().slice(0, 5) : '';
  const when = win
    ? win.open
      ? `, in its run window until ${at}`
      : `, outside its run window ${win.text} until ${at}`
    : '';
  return `${w.id}: concurrency ${w.concurrency}${bound}${when}`;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

export function formatStatus(s: QueueStatus): string {
  const c = s.counts;
  const lines = [
    `queue ${s.queue}${s.paused ? ` (PAUSED${s.paused_by ? ` by ${s.paused_by.reason}: ${s.paused_by.message}` : ''})` : ''}`,
    `  waiting ${c.waiting}, active ${c.active}, delayed ${c.delayed}, completed ${c.completed}, failed ${c.failed}`,
    `  throughput ${s.throughput.per_minute}/min over ${s.throughput.minutes} min (${s.throughput.last_minute} in the last minute)` +
      (s.eta_s !== null ? `, ETA ${formatDuration(s.eta_s * 1000)}` : ''),
  ];
  if (s.rate)
    lines.push(`  rate limit: ${s.rate.used_in_window} of ${s.rate.count} used in the last ${s.rate.window_s} s`);
  if (s.workers.length > 0) {
    const total = s.workers.reduce((n, w) => n + w.concurrency, 0);
    lines.push(`  workers: ${s.workers.length}, total concurrency ${total}`);
    for (const w of s.workers) lines.push(`    ${describeWorker(w)}`);
  }
  if (s.lockout_ms > 0) lines.push(`  429 lockout: ${formatDuration(s.lockout_ms)} left`);
  const names = Object.keys(s.batches);
  if (names.length) {
    lines.push(
      '',
      'batch'.padEnd(28) +
        'total'.padStart(7) +
        'ok'.padStart(7) +
        'filt'.padStart(6) +
        'fail'.padStart(6) +
        'pend'.padStart(7) +
        'credits'.padStart(10),
    );
    for (const n of names) {
      const b = s.batches[n]!;
      lines.push(
        n.slice(0, 27).padEnd(28) +
          String(b.total).padStart(7) +
          String(b.succeeded).padStart(7) +
          String(b.filtered).padStart(6) +
          String(b.failed).padStart(6) +
          String(b.pending).padStart(7) +
          String(b.credits).padStart(10),
      );
    }
  }
  const errs = Object.entries(s.last_errors);
  if (errs.length) {
    lines.push('', 'recent failures:');
    for (const [cls, e] of errs) lines.push(`  ${cls} ×${e.count}: ${e.last.message.slice(0, 120)}`);
  }
  for (const h of s.hints) lines.push(`hint: ${h}`);
  return lines.join('\n');
}
