import type { QueueContext } from './cli/context.js';
import type { PauseRecord } from './control.js';

export interface QueueStatus {
  queue: string;
  paused: boolean;
  paused_by: PauseRecord | null;
  counts: { waiting: number; active: number; delayed: number; completed: number; failed: number };
  batches: Record<string, { total: number; succeeded: number; filtered: number; failed: number; cancelled: number; pending: number; credits: number; maybe_billed_credits: number; budget: number | null }>;
}

/** The numbers `status` prints (SPEC §3 `status --json`). */
export async function queueStatus(ctx: QueueContext, queueName: string, onlyBatch?: string): Promise<QueueStatus> {
  const c = await ctx.queue.getJobCounts('wait', 'prioritized', 'active', 'delayed', 'completed', 'failed');
  const names = onlyBatch ? [onlyBatch] : await ctx.state.batches();
  const batches: QueueStatus['batches'] = {};
  for (const name of names.sort()) {
    const meta = await ctx.state.getMeta(name);
    if (!onlyBatch && meta.queue && meta.queue !== queueName) continue;
    const counts = await ctx.state.counts(name);
    const l = await ctx.ledger.get(name);
    batches[name] = { ...counts, credits: l.billed, maybe_billed_credits: l.maybeBilled, budget: l.budget };
  }
  return {
    queue: queueName,
    paused: await ctx.queue.isPaused(),
    paused_by: await ctx.control.pausedBy(),
    counts: {
      waiting: (c.wait ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
    },
    batches,
  };
}

export function formatStatus(s: QueueStatus): string {
  const c = s.counts;
  const lines = [
    `queue ${s.queue}${s.paused ? ` (PAUSED${s.paused_by ? ` by ${s.paused_by.reason}: ${s.paused_by.message}` : ''})` : ''}`,
    `  waiting ${c.waiting}, active ${c.active}, delayed ${c.delayed}, completed ${c.completed}, failed ${c.failed}`,
  ];
  const names = Object.keys(s.batches);
  if (names.length) {
    lines.push('', 'batch'.padEnd(28) + 'total'.padStart(7) + 'ok'.padStart(7) + 'filt'.padStart(6) + 'fail'.padStart(6) + 'pend'.padStart(7) + 'credits'.padStart(10));
    for (const n of names) {
      const b = s.batches[n]!;
      lines.push(n.slice(0, 27).padEnd(28) + String(b.total).padStart(7) + String(b.succeeded).padStart(7) + String(b.filtered).padStart(6) +
        String(b.failed).padStart(6) + String(b.pending).padStart(7) + String(b.credits).padStart(10));
    }
  }
  return lines.join('\n');
}
