import { basename, extname } from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { EnvironmentError, PromptFileError, StorageError, UsageError } from '../errors.js';
import { checkName, nameFrom } from '../names.js';
import { buildJob, creditsOf, identifyJobs, type JobIdentities } from './plan.js';
import type { JobData } from './job-data.js';
import { loadPromptFilesOrThrow } from '../prompts/load.js';
import type { GenerationDefaults, PromptSpec } from '../prompts/types.js';
import type { ExpansionOptions } from '../prompts/dynamic/expand.js';
import { DEFAULT_CHECKS, runPreflight, type PreflightCheck } from '../prompts/preflight.js';
import { addJobs, createJobLookup } from './queue.js';
import type { BatchState } from './batch-state.js';
import type { Ledger } from '../billing/ledger.js';
import { batchDir, checkBatchName, slugify } from '../output/paths.js';
import {
  imageNameOf,
  judgeOnDisk,
  scanBatch,
  type BatchScan,
  type DiskVerdict,
  type JobOnDisk,
} from '../output/batch-scan.js';
import { judgeStored, scanStore } from '../output/object-scan.js';
import { batchStore } from '../output/storage/open.js';
import type { BatchStore, OutputRoot } from '../output/storage/types.js';
import { outputExtension } from '../models.js';
import { checkWithApi, type ApiChecks } from './api-checks.js';
import { budgetWarning, type EnqueueSummary } from './enqueue-summary.js';

export { formatSummary, type EnqueueSummary } from './enqueue-summary.js';

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

export interface EnqueueDeps extends ApiChecks {
  logger: Logger;
  /** `mock` or the API host; recorded in every job, and half of the batch's identity. */
  api: string;
  /** The output folder: the batch folder in it says which images are already paid for. */
  out: string;
  /** Where the output goes when not a folder (`--out s3://…`): the batch's objects say it instead. */
  output?: OutputRoot;
  /** Connects only after the files validated (a bad file leaves no trace in Redis); absent for --dry-run. */
  connect?: () => Promise<EnqueueRedis>;
}

export interface EnqueueRedis {
  redis: Redis;
  queue: Queue<JobData>;
  /** The prefix of the queue's own keys (queuePrefix). */
  queuePrefix: string;
  queueName: string;
  state: BatchState;
  ledger: Ledger;
}

export function defaultBatchName(file: string): string {
  return nameFrom(basename(file, extname(file))) ?? 'batch';
}

/** The batch's jobs sorted by what Redis and the disk already know of them. */
interface Partition {
  /** Held by the queue already (in any state). */
  present: number;
  /** Finished images on disk: recorded as final, not enqueued. */
  onDisk: Array<{ jobId: string; state: 'succeeded' | 'filtered'; file: string }>;
  /** To add: job number in the plan, and the file name a job already on disk keeps. */
  fresh: Array<{ n: number; kept?: { file: string; index: number } }>;
  /** The highest image index on disk. */
  maxIndex: number;
}

/** A batch's files, read, validated and expanded into job identities: what enqueue plans to add. */
interface BatchPlan {
  batch: string;
  specs: PromptSpec[];
  ident: JobIdentities;
  summary: EnqueueSummary;
}

async function planBatch(opts: EnqueueOptions, api: string): Promise<BatchPlan> {
  if (opts.files.length === 0) throw new UsageError('give at least one prompt file');
  const batch = opts.batch ?? defaultBatchName(opts.files[0]!);
  checkName(batch, '--batch', 'batch');
  checkBatchName({ api, batch });
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
    onDisk: 0,
    estimatedCredits: creditsOf(ident),
    balance: null,
    maxCredits: opts.maxCredits ?? null,
    warnings: [...preflight.warnings],
    examples: examplesOf(specs),
    dryRun: opts.dryRun,
  };
  return { batch, specs, ident, summary };
}

/** Parse and validate whole files, expand, then add what is not there yet. Nothing is added if any line is bad. */
export async function enqueuePromptFiles(opts: EnqueueOptions, deps: EnqueueDeps): Promise<EnqueueSummary> {
  const { batch, specs, ident, summary } = await planBatch(opts, deps.api);
  if (opts.dryRun || !deps.connect) {
    budgetWarning(summary);
    return summary;
  }
  const r = await deps.connect();
  summary.queue = r.queueName;
  const ref = { api: deps.api, batch };
  const store = deps.output?.kind === 'objects' ? batchStore(deps.output, ref) : null;
  const part = await partition(r, ident, { specs, dir: batchDir(deps.out, ref), store });
  summary.present = part.present;
  summary.onDisk = part.onDisk.length;
  summary.estimatedCredits = creditsOf(
    ident,
    part.fresh.map((f) => f.n),
  );
  budgetWarning(summary);
  if (part.fresh.length > 0) {
    const fresh = part.fresh.map((f) => f.n);
    await checkWithApi(deps, { specs, ident, fresh, summary, force: opts.force });
  }

  if (opts.maxCredits !== undefined) await r.ledger.setBudget(batch, opts.maxCredits);
  await r.state.setMeta(batch, { queue: r.queueName, created_at: new Date().toISOString(), api: deps.api });
  // Jobs found finished on disk count as what they are, so `run` and `status` see the whole batch.
  await r.state.setStates(
    batch,
    part.onDisk.map((d) => ({ jobId: d.jobId, state: d.state, file: d.file })),
  );
  await storeJobs(r, { specs, ident, part, batch, api: deps.api });
  summary.added = part.fresh.length;
  const { added, present, onDisk, estimatedCredits: credits } = summary;
  deps.logger.info({ batch, added, present, onDisk, credits }, 'enqueued');
  return summary;
}

/**
 * One look at the queue (which ids it holds) and one listing of the batch folder (or of the batch's
 * objects); only the sidecars whose name matches a job not in the queue are read.
 */
async function partition(
  r: EnqueueRedis,
  ident: JobIdentities,
  o: { specs: PromptSpec[]; dir: string; store: BatchStore | null },
): Promise<Partition> {
  const present = await createJobLookup(r.redis, r.queuePrefix, r.queueName).present(ident.ids);
  const absent = ident.ids.flatMap((id, n) =>
    present.has(id) ? [] : [{ id, id8: ident.id8s[n]!, slug: slugify(o.specs[ident.spec[n]!]!.prompt), n }],
  );
  const { scan, verdicts } = await judgeBatch(o, absent);
  const part: Partition = { present: present.size, onDisk: [], fresh: [], maxIndex: scan.maxIndex };
  for (const job of absent) {
    const v = verdicts.get(job.id);
    if (v?.kind === 'finished') {
      part.onDisk.push({ jobId: job.id, state: v.record.status as 'succeeded' | 'filtered', file: v.record.file! });
    } else if (v?.kind === 'rerun') {
      const ext = outputExtension(o.specs[ident.spec[job.n]!]!.params);
      part.fresh.push({ n: job.n, kept: imageNameOf(v.sidecar, ext) });
    } else {
      part.fresh.push({ n: job.n });
    }
  }
  return part;
}

/** What the batch's folder, or its objects, say about the jobs not in the queue. */
async function judgeBatch(
  o: { dir: string; store: BatchStore | null },
  jobs: JobOnDisk[],
): Promise<{ scan: BatchScan; verdicts: Map<string, DiskVerdict> }> {
  if (o.store) {
    const store = o.store;
    try {
      const stored = await scanStore(store);
      return { scan: stored, verdicts: await judgeStored(store, stored, jobs) };
    } catch (err) {
      // Without the bucket's answer nothing can be known paid: add nothing (exit 3, like Redis away).
      if (!(err instanceof StorageError)) throw err;
      throw new EnvironmentError(`${err.message}; nothing was enqueued`, { cause: err });
    }
  }
  const scan = await scanBatch(o.dir);
  return { scan, verdicts: await judgeOnDisk(o.dir, scan, jobs) };
}

interface StoreContext {
  specs: PromptSpec[];
  ident: JobIdentities;
  part: Partition;
  batch: string;
  api: string;
}

/**
 * New jobs are numbered after every index on disk and every index already given out (by any queue's
 * enqueue), then built and added a chunk at a time: the next chunk is built while Redis stores the
 * last one, and no more than two are ever in memory.
 */
async function storeJobs(r: EnqueueRedis, c: StoreContext): Promise<void> {
  const numbered = c.part.fresh.filter((f) => !f.kept).length;
  let next = numbered > 0 ? await r.state.reserveIndexes(c.batch, numbered, c.part.maxIndex) : 0;
  let storing: Promise<void> | null = null;
  for (let i = 0; i < c.part.fresh.length; i += CHUNK) {
    const chunk = c.part.fresh.slice(i, i + CHUNK).map((f) => {
      const where = f.kept ?? { index: next++ };
      return buildJob(c.specs, c.ident, f.n, { batch: c.batch, api: c.api, ...where });
    });
    await storing;
    storing = (async () => {
      // Registered before added, so a worker's final state always finds its job registered.
      await r.state.addJobs(
        c.batch,
        chunk.map((j) => j.id),
      );
      await addJobs(r.queue, chunk);
    })();
  }
  await storing;
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
