import { createHash } from 'node:crypto';
import { MODELS, creditsPerImage, outputExtension } from './models.js';
import type { PromptSpec } from './prompts/types.js';
import type { JobData } from './job-data.js';
import { imageFileName } from './output/paths.js';

/** Batch names end up in job ids, Redis keys and folder names. */
export const BATCH_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface PlannedJob {
  id: string;
  /** First 8 hex digits of the job's hash; part of the file name. */
  id8: string;
  data: JobData;
}

export interface JobPlan {
  jobs: PlannedJob[];
  /** Jobs that were identical to an earlier one in the same batch and collapsed into it. */
  collapsed: number;
}

function sha256(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** Stable JSON of params: key order must not change a seed or an id. */
function canonicalParams(params: object): Array<[string, unknown]> {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => a.localeCompare(b));
}

/**
 * A seed derived from what the image is, so a retry or a re-enqueue asks for the same
 * image while a new batch gets new ones. Never 0: the API reads 0 as "random".
 */
export function deriveSeed(batch: string, spec: PromptSpec, sample: number): number {
  const h = sha256(['seed', batch, spec.model, spec.prompt, spec.negative_prompt, canonicalParams(spec.params), sample]);
  const max = MODELS[spec.model].seedMax;
  return (Number.parseInt(h.slice(0, 12), 16) % max) + 1;
}

export function seedFor(batch: string, spec: PromptSpec, sample: number): number {
  // Seed 0 means "random" to the API; a derived seed keeps retries asking for the same image.
  return spec.seed === null || spec.seed === 0 ? deriveSeed(batch, spec, sample) : spec.seed + sample;
}

/** Job id = batch + a hash of what is generated, or batch + the line's id + sample. */
export function jobIdFor(batch: string, spec: PromptSpec, seed: number, sample: number): { id: string; id8: string } {
  if (spec.id !== undefined) {
    const id8 = sha256(['id', batch, spec.id, sample]).slice(0, 8);
    return { id: `${batch}--${spec.id}--${sample}`, id8 };
  }
  const hash = sha256([spec.model, spec.prompt, spec.negative_prompt, canonicalParams(spec.params), seed, sample]);
  return { id: `${batch}--${hash.slice(0, 24)}`, id8: hash.slice(0, 8) };
}

/**
 * Expands prompt specs into one job per image (samples → seeds seed, seed+1, …),
 * collapsing identical jobs. `firstIndex` numbers the batch's new jobs after the ones it has.
 */
export function planJobs(specs: PromptSpec[], opts: { batch: string; api: string; firstIndex?: number }): JobPlan {
  const seen = new Set<string>();
  const jobs: PlannedJob[] = [];
  let collapsed = 0;
  let index = opts.firstIndex ?? 1;
  for (const spec of specs) {
    for (let sample = 0; sample < spec.samples; sample++) {
      const seed = seedFor(opts.batch, spec, sample);
      const { id, id8 } = jobIdFor(opts.batch, spec, seed, sample);
      if (seen.has(id)) {
        collapsed++;
        continue;
      }
      seen.add(id);
      const data: JobData = {
        v: 1,
        batch: opts.batch,
        api: opts.api,
        source: spec.source,
        line: spec.line,
        index,
        sample,
        prompt: spec.prompt,
        negative_prompt: spec.negative_prompt,
        model: spec.model,
        params: spec.params,
        seed,
        credits: creditsPerImage(spec.model, spec.params),
        file: imageFileName(index, spec.prompt, id8, outputExtension(spec.params)),
        rate_limited: 0,
        maybe_billed: 0,
        storage_delays: 0,
      };
      jobs.push({ id, id8, data });
      index++;
    }
  }
  return { jobs, collapsed };
}

/** Sum of list prices, rounded to avoid float dust. */
export function sumCredits(jobs: Array<{ data: { credits: number } }>): number {
  return Math.round(jobs.reduce((s, j) => s + j.data.credits, 0) * 1e6) / 1e6;
}

/** Gives jobs consecutive indices (and the file names that start with them) from `firstIndex`. */
export function renumber(jobs: PlannedJob[], firstIndex: number): PlannedJob[] {
  return jobs.map((job, k) => {
    const index = firstIndex + k;
    const file = imageFileName(index, job.data.prompt, job.id8, outputExtension(job.data.params));
    return { ...job, data: { ...job.data, index, file } };
  });
}
