import { basename, extname } from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ApiError, EnvironmentError, PromptFileError, StoppedError, UsageError } from '../errors.js';
import { BATCH_NAME, buildJob, creditsOf, identifyJobs } from './plan.js';
import type { JobData } from './job-data.js';
import { loadPromptFilesOrThrow } from '../prompts/load.js';
import type { GenerationDefaults, PromptSpec } from '../prompts/types.js';
import type { ExpansionOptions } from '../prompts/dynamic/expand.js';
import { DEFAULT_CHECKS, runPreflight, type PreflightCheck } from '../prompts/preflight.js';
import { addJobs, existingJobIds } from './queue.js';
import type { BatchState } from './batch-state.js';
import type { Ledger } from '../billing/ledger.js';

export interface EnqueueOptions {
  files: string[];
  defaults: GenerationDefaults;
  batch?: string;
  maxCredits?: number;
  maxJobs: number;
  dryRun: boolean;
  force: boolean;
  /** Wildcards and variants mode; random mode is seeded by the batch name. */
  expansion?: Omit<ExpansionOptions, 'seedKey'>;
  /** Refuse (exit 2) instead of warning when the pre-flight predicts failures. Default false. */
  strict?: boolean;
  /** Pre-flight checks. Default: DEFAULT_CHECKS. */
  preflight?: readonly PreflightCheck[];
}

export interface EnqueueDeps {
  logger: Logger;
  /** `mock` or the API host; recorded in every job. */
  api: string;
  /** Connects only after the files validated (a bad file leaves no trace in Redis); absent for --dry-run. */
  connect?: () => Promise<EnqueueRedis>;
  /** Present when a key is set: the balance is checked before paying for anything. */
  getBalance?: () => Promise<number>;
}

export interface EnqueueRedis {
  redis: Redis;
  queue: Queue<JobData>;
  prefix: string;
  queueName: string;
  state: BatchState;
  ledger: Ledger;
}

export interface EnqueueSummary {
  batch: string;
  queue: string | null;
  files: string[];
  prompts: number;
  jobs: number;
  collapsed: number;
  added: number;
  present: number;
  /** Credits of the jobs this call added (all planned jobs for --dry-run). */
  estimatedCredits: number;
  balance: number | null;
  maxCredits: number | null;
  warnings: string[];
  /** The first few prompts, as expanded. */
  examples: string[];
  dryRun: boolean;
}

export function defaultBatchName(file: string): string {
  const base = basename(file, extname(file))
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  return base.slice(0, 64) || 'batch';
}

/** Parse and validate whole files, expand, then add what is not there yet. Nothing is added if any line is bad. */
export async function enqueuePromptFiles(opts: EnqueueOptions, deps: EnqueueDeps): Promise<EnqueueSummary> {
  if (opts.files.length === 0) throw new UsageError('give at least one prompt file');
  const batch = opts.batch ?? defaultBatchName(opts.files[0]!);
  if (!BATCH_NAME.test(batch)) {
    throw new UsageError(
      `--batch: "${batch}" is not a valid batch name (1–64 letters, digits, . _ -, starting with a letter or digit)`,
    );
  }
  const { specs } = await loadPromptFilesOrThrow(opts.files, opts.defaults, {
    maxPrompts: opts.maxJobs,
    expansion: { ...opts.expansion, seedKey: batch },
  });
  const ident = identifyJobs(specs, batch);
  if (ident.ids.length > opts.maxJobs) {
    throw new UsageError(
      `the batch would make ${ident.ids.length} jobs, more than --max-jobs ${opts.maxJobs}; raise --max-jobs or split the file`,
    );
  }
  const preflight = runPreflight({ specs, jobs: ident.ids.length }, opts.preflight ?? DEFAULT_CHECKS);
  if (opts.strict && preflight.problems.length > 0) throw new PromptFileError(preflight.problems);
  const summary: EnqueueSummary = {
    batch,
    queue: null,
    files: opts.files,
    prompts: specs.length,
    jobs: ident.ids.length,
    collapsed: ident.collapsed,
    added: 0,
    present: 0,
    estimatedCredits: creditsOf(ident),
    balance: null,
    maxCredits: opts.maxCredits ?? null,
    warnings: [...preflight.warnings],
    examples: examplesOf(specs),
    dryRun: opts.dryRun,
  };
  if (opts.dryRun || !deps.connect) {
    budgetWarning(summary);
    return summary;
  }
  const r = await deps.connect();
  summary.queue = r.queueName;
  const present = await existingJobIds(r.redis, r.prefix, r.queueName, ident.ids);
  const fresh: number[] = [];
  ident.ids.forEach((id, n) => {
    if (!present.has(id)) fresh.push(n);
  });
  summary.present = present.size;
  summary.estimatedCredits = creditsOf(ident, fresh);
  budgetWarning(summary);

  if (fresh.length > 0 && deps.getBalance) {
    summary.balance = await checkBalance(deps.getBalance);
    if (summary.estimatedCredits > summary.balance && !opts.force) {
      throw new StoppedError(
        'balance',
        `the batch needs about ${summary.estimatedCredits} credits but the account has ${summary.balance}; buy credits, shrink the batch, or pass --force`,
      );
    }
  }
  if (opts.maxCredits !== undefined) await r.ledger.setBudget(batch, opts.maxCredits);
  await r.state.setMeta(batch, { queue: r.queueName, created_at: new Date().toISOString(), api: deps.api });
  // New jobs are numbered after the batch's existing ones, then built and added a chunk at a time:
  // the next chunk is built while Redis stores the last one, and no more than two are ever in memory.
  const firstIndex = (await r.state.counts(batch)).total + 1;
  let storing: Promise<void> | null = null;
  for (let i = 0; i < fresh.length; i += CHUNK) {
    const chunk = fresh
      .slice(i, i + CHUNK)
      .map((n, k) => buildJob(specs, ident, n, { batch, api: deps.api, index: firstIndex + i + k }));
    await storing;
    storing = (async () => {
      // Registered before added, so a worker's final state always finds its job registered.
      await r.state.addJobs(
        batch,
        chunk.map((j) => j.id),
      );
      await addJobs(r.queue, chunk);
    })();
  }
  await storing;
  summary.added = fresh.length;
  deps.logger.info(
    { batch, added: summary.added, present: summary.present, credits: summary.estimatedCredits },
    'enqueued',
  );
  return summary;
}

/** Jobs built and stored per step. */
const CHUNK = 1000;
const EXAMPLES = 5;

function examplesOf(specs: readonly PromptSpec[]): string[] {
  const out = new Set<string>();
  for (const s of specs) {
    if (out.size >= EXAMPLES) break;
    out.add(s.prompt);
  }
  return [...out];
}

function budgetWarning(s: EnqueueSummary): void {
  if (s.maxCredits !== null && s.estimatedCredits > s.maxCredits) {
    s.warnings.push(
      `the estimate (${s.estimatedCredits} credits) exceeds --max-credits ${s.maxCredits}: jobs past the budget will fail unsent`,
    );
  }
}

async function checkBalance(getBalance: () => Promise<number>): Promise<number> {
  try {
    return await getBalance();
  } catch (err) {
    if (err instanceof ApiError && (err.errorClass === 'auth' || err.errorClass === 'payment')) {
      throw new StoppedError(
        err.errorClass,
        `the API refused the key while checking the balance (${err.status}): ${err.message}`,
      );
    }
    if (err instanceof ApiError && err.status === null) {
      throw new EnvironmentError(`the API host is unreachable: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

export function formatSummary(s: EnqueueSummary): string {
  const lines = [
    `${s.dryRun ? 'dry run: ' : ''}batch ${s.batch}${s.queue ? ` on queue ${s.queue}` : ''}: ${s.prompts} prompts → ${s.jobs} jobs` +
      (s.collapsed ? ` (${s.collapsed} identical collapsed)` : ''),
    s.dryRun ? `would enqueue up to ${s.jobs} jobs` : `added ${s.added}, already present ${s.present}`,
    `estimated credits: ${s.estimatedCredits}${s.maxCredits !== null ? ` (budget ${s.maxCredits})` : ''}` +
      (s.balance !== null ? `, account balance: ${s.balance}` : ''),
    ...(s.dryRun && s.examples.length > 0
      ? [`first ${s.examples.length} of ${s.prompts} prompts:`, ...s.examples.map((p) => `  ${p}`)]
      : []),
    ...s.warnings.map((w) => `warning: ${w}`),
  ];
  return lines.join('\n');
}
