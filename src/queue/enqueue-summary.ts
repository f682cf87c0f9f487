/** What `enqueue` (and `run`) report about a batch they enqueued. */
export interface EnqueueSummary {
  batch: string;
  queue: string | null;
  files: string[];
  prompts: number;
  jobs: number;
  collapsed: number;
  added: number;
  /** Jobs the queue held already. */
  present: number;
  /** Jobs whose image is already in the batch folder: paid for, not enqueued. */
  onDisk: number;
  /** Credits of the jobs this call added (all planned jobs for --dry-run). */
  estimatedCredits: number;
  balance: number | null;
  maxCredits: number | null;
  warnings: string[];
  /** The first few prompts, as expanded. */
  examples: string[];
  dryRun: boolean;
}

export function budgetWarning(s: EnqueueSummary): void {
  if (s.maxCredits !== null && s.estimatedCredits > s.maxCredits) {
    s.warnings.push(
      `the estimate (${s.estimatedCredits} credits) exceeds --max-credits ${s.maxCredits}: jobs past the budget will fail unsent`,
    );
  }
}

export function formatSummary(s: EnqueueSummary): string {
  const lines = [
    `${s.dryRun ? 'dry run: ' : ''}batch ${s.batch}${s.queue ? ` on queue ${s.queue}` : ''}: ${s.prompts} prompts → ${s.jobs} jobs` +
      (s.collapsed ? ` (${s.collapsed} identical collapsed)` : ''),
    s.dryRun
      ? `would enqueue up to ${s.jobs} jobs`
      : `added ${s.added}, already present ${s.present}, already on disk ${s.onDisk}`,
    `estimated credits: ${s.estimatedCredits}${s.maxCredits !== null ? ` (budget ${s.maxCredits})` : ''}` +
      (s.balance !== null ? `, account balance: ${s.balance}` : ''),
    ...(s.dryRun && s.examples.length > 0
      ? [`first ${s.examples.length} of ${s.prompts} prompts:`, ...s.examples.map((p) => `  ${p}`)]
      : []),
    ...s.warnings.map((w) => `warning: ${w}`),
  ];
  return lines.join('\n');
}
