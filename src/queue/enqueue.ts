import { createHash } from 'node:crypto';
import { basename, extname } from 'node:path';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { EnvironmentError, PromptFileError, StorageError, UsageError } from '../errors.js';
import { checkName, nameFrom } from '../names.js';
import { buildJob, creditsOf, type PlannedJob } from './plan.js';
import { fingerprint, planCollector, type PlanPass } from './plan-pass.js';
import type { JobData } from './job-data.js';
import { promptSpecChunks, validatePromptFiles, type LoadOptions } from '../prompts/load.js';
import type { GenerationDefaults, PromptSpec } from '../prompts/types.js';
import type { ExpansionOptions } from '../prompts/dynamic/expand.js';
import { DEFAULT_CHECKS, formatPreflight, type PreflightCheck } from '../prompts/preflight.js';
import { addJobs, createJobLookup } from './queue.js';
import type { BatchState } from './batch-state.js';
import type { Ledger } from '../billing/ledger.js';
import { batchDir, checkBatchName } from '../output/paths.js';
import { checkBatchFolder } from '../output/safe-dirs.js';
import {
  imageNameOf,
  judgeOnDisk,
  scanBatch,
  type BatchScan,
  type DiskVerdict,
  type JobOnDisk,
} from '../output/batch-scan.js';
import { judgeStored, scanStore, type StoredScan } from '../output/object-scan.js';
import { batchStore } from '../output/storage/open.js';
import type { BatchStore, OutputRoot } from '../output/storage/types.js';
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

/**
 * The batch a file makes when --batch is not given: its base name as a valid name. A name made only
 * of letters outside ASCII keeps nothing, so it becomes `batch-` and 8 digits of its hash: `日本.txt`
 * and `中国.txt` must not become the same batch (numbering, budget, folder) without a word.
 */
export function defaultBatchName(file: string): string {
  const base = basename(file, extname(file));
  const name = nameFrom(base);
  if (name !== null) return name;
  // Nothing of the name can be kept (`日本.txt`): 8 digits of its hash keep such files apart.
  // eslint-disable-next-line no-control-regex -- what ASCII is
  if (!/[^\u0000-\u007f]/.test(base)) return 'batch';
  return `batch-${createHash('sha256').update(base).digest('hex').slice(0, 8)}`;
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

/** A batch's files, read and validated into job identities: what enqueue plans to add. */
interface BatchPlan {
  batch: string;
  plan: PlanPass;
  /** The batch folder's listing (null for a dry run: nothing is compared with the disk). */
  scan: BatchScan | null;
  dir: string;
  /** The batch's objects when the output is a bucket; null for a folder. */
  store: BatchStore | null;
  summary: EnqueueSummary;
}

/** What both passes read the files with. */
function loadOptions(opts: EnqueueOptions, batch: string): LoadOptions {
  return { maxPrompts: opts.maxJobs, expansion: { ...opts.expansion, seedKey: batch } };
}

/** The first pass: every line validated, the jobs identified, nothing kept of the specs. */
async function planBatch(opts: EnqueueOptions, deps: Pick<EnqueueDeps, 'api' | 'out' | 'output'>): Promise<BatchPlan> {
  const { api, out } = deps;
  if (opts.files.length === 0) throw new UsageError('give at least one prompt file');
  const batch = opts.batch ?? defaultBatchName(opts.files[0]!);
  checkName(batch, '--batch', 'batch');
  checkBatchName({ api, batch });
  const dir = batchDir(out, { api, batch });
  // Listed before the pass, so the pass notes which jobs may be on disk while it has their specs.
  const store = deps.output?.kind === 'objects' ? batchStore(deps.output, { api, batch }) : null;
  const scan = opts.dryRun ? null : await listBatch({ out, dir }, store);
  const collect = planCollector(batch, { api: deps.api, checks: opts.preflight ?? DEFAULT_CHECKS, scan });
  const checked = await validatePromptFiles(opts.files, opts.defaults, loadOptions(opts, batch), collect.look);
  if (checked.problems.length > 0) throw new PromptFileError(checked.problems);
  const plan = collect.finish();
  const { ident } = plan;
  if (ident.ids.length > opts.maxJobs) {
    throw new UsageError(
      `the batch would make ${ident.ids.length} jobs, more than --max-jobs ${opts.maxJobs}; raise --max-jobs or split the file`,
    );
  }
  const preflight = formatPreflight(plan.preflight);
  if (opts.strict && plan.preflight.length > 0) throw new PromptFileError(plan.preflight);
  const summary: EnqueueSummary = {
    batch,
    queue: null,
    files: opts.files,
    prompts: plan.prompts,
    jobs: ident.ids.length,
    collapsed: ident.collapsed,
    added: 0,
    present: 0,
    onDisk: 0,
    estimatedCredits: creditsOf(ident),
    balance: null,
    maxCredits: opts.maxCredits ?? null,
    warnings: [...preflight],
    examples: plan.examples,
    dryRun: opts.dryRun,
  };
  return { batch, plan, scan, dir, store, summary };
}

/**
 * Validate whole files (nothing is added if any line is bad), then read them again and add what is
 * not there yet, a chunk at a time as the lines are read.
 */
export async function enqueuePromptFiles(opts: EnqueueOptions, deps: EnqueueDeps): Promise<EnqueueSummary> {
  const planned = await planBatch(opts, deps);
  const { batch, plan, summary } = planned;
  if (opts.dryRun || !deps.connect) {
    budgetWarning(summary);
    return summary;
  }
  const r = await deps.connect();
  summary.queue = r.queueName;
  const part = await partition(r, planned);
  summary.present = part.present;
  summary.onDisk = part.onDisk.length;
  summary.estimatedCredits = creditsOf(
    plan.ident,
    part.fresh.map((f) => f.n),
  );
  budgetWarning(summary);
  if (part.fresh.length > 0) {
    const fresh = part.fresh.map((f) => f.n);
    await checkWithApi(deps, { plan, fresh, summary, force: opts.force });
  }

  if (opts.maxCredits !== undefined) await r.ledger.setBudget(batch, opts.maxCredits);
  await r.state.setMeta(batch, { queue: r.queueName, created_at: new Date().toISOString(), api: deps.api });
  // Jobs found finished on disk count as what they are, so `run` and `status` see the whole batch.
  await r.state.setStates(
    batch,
    part.onDisk.map((d) => ({ jobId: d.jobId, state: d.state, file: d.file })),
  );
  if (part.fresh.length > 0) {
    const specs = promptSpecChunks(opts.files, opts.defaults, loadOptions(opts, batch));
    await storeJobs(r, { specs, plan, part, batch, api: deps.api, files: opts.files });
  }
  summary.added = part.fresh.length;
  const { added, present, onDisk, estimatedCredits: credits } = summary;
  deps.logger.info({ batch, added, present, onDisk, credits }, 'enqueued');
  return summary;
}

/**
 * One look at the queue (which ids it holds), and the sidecars of the jobs the first pass found
 * may be on disk and the queue does not hold.
 */
async function partition(r: EnqueueRedis, b: BatchPlan): Promise<Partition> {
  const { ident, candidates } = b.plan;
  const scan = b.scan!;
  const present = await createJobLookup(r.redis, r.queuePrefix, r.queueName).present(ident.ids);
  const absent = candidates.filter((c) => !present.has(c.id));
  const verdicts = await judgeBatch(b, scan, absent);
  const ext = new Map(absent.map((c) => [c.n, c.ext]));
  const part: Partition = { present: present.size, onDisk: [], fresh: [], maxIndex: scan.maxIndex };
  for (let n = 0; n < ident.ids.length; n++) {
    const id = ident.ids[n]!;
    if (present.has(id)) continue;
    const v = verdicts.get(id);
    if (v?.kind === 'finished') {
      part.onDisk.push({ jobId: id, state: v.record.status as 'succeeded' | 'filtered', file: v.record.file! });
    } else if (v?.kind === 'rerun') {
      part.fresh.push({ n, kept: imageNameOf(v.sidecar, ext.get(n)!) });
    } else {
      part.fresh.push({ n });
    }
  }
  return part;
}

/** What the batch's folder, or its objects, say about the jobs not in the queue. */
function judgeBatch(b: BatchPlan, scan: BatchScan, jobs: JobOnDisk[]): Promise<Map<string, DiskVerdict>> {
  // With a store, the scan is the store's own listing (listBatch), sizes included.
  return b.store ? judgeStored(b.store, scan as StoredScan, jobs) : judgeOnDisk(b.dir, scan, jobs);
}

/**
 * One listing of the batch folder, or of the batch's objects. A batch folder that is a link (or
 * holds planted ones) is not read to decide what was paid.
 */
async function listBatch(where: { out: string; dir: string }, store: BatchStore | null): Promise<BatchScan> {
  try {
    if (store) return await scanStore(store);
    await checkBatchFolder(where);
    return await scanBatch(where.dir);
  } catch (err) {
    // Without the folder's or the bucket's answer nothing can be known paid: add nothing (exit 3,
    // like Redis away; an --out that is a file says so here).
    if (!(err instanceof StorageError) && !(err instanceof EnvironmentError)) throw err;
    throw new EnvironmentError(`${err.message}; nothing was enqueued`, { cause: err });
  }
}

interface StoreContext {
  specs: AsyncGenerator<PromptSpec[]>;
  plan: PlanPass;
  part: Partition;
  batch: string;
  api: string;
  files: readonly string[];
}

/** Jobs added per addBulk call. */
const CHUNK = 500;
/** addBulk calls in flight at once: Redis works on one while the next is built and sent. */
const WINDOW = 4;

/**
 * New jobs are numbered after every index on disk and every index already given out (by any queue's
 * enqueue), then built from the second pass's specs and added a chunk at a time as the lines are
 * read, with at most WINDOW chunks waiting on Redis: the specs are never all in memory.
 */
async function storeJobs(r: EnqueueRedis, c: StoreContext): Promise<void> {
  const numbered = c.part.fresh.filter((f) => !f.kept).length;
  let next = numbered > 0 ? await r.state.reserveIndexes(c.batch, numbered, c.part.maxIndex) : 0;
  const window = new Set<Promise<void>>();
  let failed: { err: unknown } | null = null;
  // Jobs handed to Redis so far: what a change seen later says was already added.
  let sent = 0;
  const store = async (jobs: PlannedJob[]) => {
    if (window.size >= WINDOW) await Promise.race(window);
    if (failed) throw failed.err;
    sent += jobs.length;
    const p: Promise<void> = storeChunk(r, c.batch, jobs)
      .catch((err: unknown) => void (failed ??= { err }))
      .finally(() => window.delete(p));
    window.add(p);
  };
  const pending: PlannedJob[] = [];
  let fi = 0;
  let offset = 0;
  let stopped: { err: unknown } | null = null;
  try {
    for await (const chunk of secondPass(c, () => sent)) {
      checkUnchanged(c, chunk, offset, sent);
      for (; fi < c.part.fresh.length && c.plan.ident.spec[c.part.fresh[fi]!.n]! < offset + chunk.length; fi++) {
        const f = c.part.fresh[fi]!;
        const where = f.kept ?? { index: next++ };
        const spec = chunk[c.plan.ident.spec[f.n]! - offset]!;
        pending.push(buildJob(spec, c.plan.ident, f.n, { batch: c.batch, api: c.api, ...where }));
        if (pending.length >= CHUNK) await store(pending.splice(0));
      }
      offset += chunk.length;
    }
    if (pending.length > 0) await store(pending.splice(0));
  } catch (err) {
    stopped = { err };
  }
  await Promise.all(window);
  // Redis refusing a chunk says more than a change seen after it.
  if (failed) throw (failed as { err: unknown }).err;
  if (stopped) throw stopped.err;
  if (offset !== c.plan.prompts) throw changedBetweenPasses(c.files, sent);
}

/**
 * The second reading of the files. A line it cannot parse was fine in the first (the file changed in
 * between, or a line was added): said as a change, with what was already added, never as a plain
 * line error that would read as "nothing was enqueued".
 */
async function* secondPass(c: StoreContext, added: () => number): AsyncGenerator<PromptSpec[]> {
  try {
    yield* c.specs;
  } catch (err) {
    if (err instanceof PromptFileError) throw changedBetweenPasses(c.files, added(), err);
    throw err;
  }
}

/** Registered before added, so a worker's final state always finds its job registered. */
async function storeChunk(r: EnqueueRedis, batch: string, jobs: PlannedJob[]): Promise<void> {
  await r.state.addJobs(
    batch,
    jobs.map((j) => j.id),
  );
  await addJobs(r.queue, jobs, CHUNK);
}

/** The second pass must read what the first judged: a spec that differs stops the enqueue there. */
function checkUnchanged(c: StoreContext, chunk: readonly PromptSpec[], offset: number, added: number): void {
  for (const [i, spec] of chunk.entries()) {
    if (c.plan.fingerprints[offset + i] !== fingerprint(spec)) {
      throw changedBetweenPasses(c.files, added, undefined, { file: spec.source, line: spec.line });
    }
  }
}

function changedBetweenPasses(
  files: readonly string[],
  added: number,
  seen?: PromptFileError,
  at?: { file: string; line: number },
): PromptFileError {
  const first = seen?.problems[0];
  const why = first ? ` (now ${first.field}: ${first.message})` : '';
  const kept =
    added > 0 ? `${added} job(s) added before the change stay in the queue and will run; ` : 'nothing was added; ';
  return new PromptFileError([
    {
      file: first?.file ?? at?.file ?? files.join(', '),
      line: first?.line ?? at?.line ?? 0,
      field: 'file',
      message: `changed while it was being enqueued${why}; ${kept}run enqueue again once the file is final (it adds only what is missing)`,
    },
  ]);
}
