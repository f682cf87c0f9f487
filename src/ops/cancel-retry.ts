import type { Job } from 'bullmq';
import type { Config } from '../config.js';
import type { QueueContext } from './context.js';
import type { JobData } from '../queue/job-data.js';
import { batchDir } from '../output/paths.js';
import { jobRecordOrNull } from './job-record.js';
import { createStash } from '../billing/stash.js';
import { recordFinal } from '../output/finalize.js';
import type { ManifestRecord } from '../output/record.js';
import { batchStore, openOutput } from '../output/storage/open.js';

const PAGE = 500;

async function* jobsOf(
  ctx: QueueContext,
  types: Array<'wait' | 'delayed' | 'prioritized' | 'failed'>,
): AsyncGenerator<Job<JobData>> {
  for (let start = 0; ; start += PAGE) {
    const page = (await ctx.queue.getJobs(types, start, start + PAGE - 1, true)) as Job<JobData>[];
    for (const j of page) if (j) yield j;
    if (page.length < PAGE) return;
  }
}

/** Whether a job belongs to one of the context's API's batches (`batch`: that one only). */
function ofBatch(ctx: QueueContext, j: Job<JobData>, batch?: string): boolean {
  return j.data?.api === ctx.api && (batch === undefined || j.data.batch === batch);
}

export interface Cancelled {
  /** Jobs removed, each with a final `cancelled` record. */
  cancelled: number;
  /** Jobs removed whose image was already saved (a worker died before the queue heard): their record stays. */
  finished: number;
  /** Jobs left in the queue because their paid image waits in Redis to be written: cancelling would lose it. */
  kept: number;
  /** Jobs removed whose record could not be written (the output could not say whether an image is saved). */
  unrecorded: { count: number; reason: string | null };
}

/** Removes a batch's waiting and delayed jobs; each gets a final `cancelled` record so the report shows it. */
export async function cancelBatch(ctx: QueueContext, config: Config, batch: string): Promise<Cancelled> {
  const victims: Job<JobData>[] = [];
  for await (const j of jobsOf(ctx, ['wait', 'delayed', 'prioritized'])) if (ofBatch(ctx, j, batch)) victims.push(j);
  const dirOf = (b: string) => batchDir(config.out, { api: ctx.api, batch: b });
  const output = openOutput(config);
  const storeFor = (b: string) => batchStore(output, { api: ctx.api, batch: b });
  const stash = createStash({ redis: ctx.redis, prefix: ctx.prefix, api: ctx.api });
  const out: Cancelled = { cancelled: 0, finished: 0, kept: 0, unrecorded: { count: 0, reason: null } };
  for (const j of victims) {
    // A paid image whose write failed waits in the stash until a worker writes it: it stays queued.
    if (await stash.has({ batch: j.data.batch, id: j.id! })) {
      out.kept++;
      continue;
    }
    try {
      await j.remove();
    } catch {
      continue; // became active meanwhile: it finishes
    }
    // A cancelled job used no attempt; its batch state becomes `cancelled`.
    const job = { id: j.id!, attemptsMade: j.attemptsMade, data: j.data };
    let record: ManifestRecord;
    try {
      record = await recordFinal({ state: ctx.state, batchDir: dirOf, storeFor, now: Date.now }, job, {
        status: 'failed',
        file: null,
        bytes: null,
        sha256: null,
        seed: j.data.seed,
        credits: 0,
        startedAt: null,
        attempts: j.attemptsMade,
        error: { class: 'cancelled', status: null, name: 'cancelled', message: 'cancelled with `nightshift cancel`' },
      });
    } catch (err) {
      // Removed, its state says cancelled, and nothing was written over what may be a saved image.
      out.unrecorded.count++;
      out.unrecorded.reason ??= err instanceof Error ? err.message : String(err);
      continue;
    }
    if (record.status === 'failed') out.cancelled++;
    else out.finished++;
  }
  return out;
}

/** Puts failed jobs back (by batch, by error class read from their sidecars), with fresh retry counters. */
export async function retryFailed(
  ctx: QueueContext,
  config: Config,
  opts: { batch?: string | undefined; errorClass?: string | undefined },
): Promise<number> {
  const chosen: Job<JobData>[] = [];
  const output = openOutput(config);
  for await (const j of jobsOf(ctx, ['failed'])) {
    if (!ofBatch(ctx, j, opts.batch)) continue;
    if (opts.errorClass) {
      const side = await jobRecordOrNull(output, { api: ctx.api, batch: j.data.batch, file: j.data.file });
      if (side?.error?.class !== opts.errorClass) continue;
    }
    chosen.push(j);
  }
  for (const j of chosen) {
    await j.updateData({ ...j.data, maybe_billed: 0, rate_limited: 0, storage_delays: 0 });
    await ctx.state.setState(j.data.batch, j.id!, 'pending');
    await j.retry('failed');
  }
  return chosen.length;
}
