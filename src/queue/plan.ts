import { createHash } from 'node:crypto';
import { MODELS, creditsPerImage, outputExtension } from '../models.js';
import type { PromptSpec } from '../prompts/types.js';
import type { JobData } from './job-data.js';
import { MOCK_API_IDENTITY } from '../config.js';
import { imageFileName } from '../output/paths.js';

/** Batch names end up in job ids, Redis keys and folder names. */

export interface PlannedJob {
  id: string;
  /** First 8 hex digits of the job's hash; part of the file name. */
  id8: string;
  data: JobData;
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
  const h = sha256([
    'seed',
    batch,
    spec.model,
    spec.prompt,
    spec.negative_prompt,
    canonicalParams(spec.params),
    sample,
  ]);
  const max = MODELS[spec.model].seedMax;
  return (Number.parseInt(h.slice(0, 12), 16) % max) + 1;
}

export function seedFor(batch: string, spec: PromptSpec, sample: number): number {
  // Seed 0 means "random" to the API; a derived seed keeps retries asking for the same image.
  return spec.seed === null || spec.seed === 0 ? deriveSeed(batch, spec, sample) : spec.seed + sample;
}

/**
 * Job id = batch + a hash of what is generated, or batch + the line's id + sample. A mock job's id
 * differs from the real job's (its hash is salted, its sample marked): a queue holding a batch run
 * with --mock must not read as already holding the real batch of that name.
 */
export function jobIdFor(
  batch: string,
  spec: PromptSpec,
  o: { seed: number; sample: number; api: string },
): { id: string; id8: string } {
  const mock = o.api === MOCK_API_IDENTITY;
  if (spec.id !== undefined) {
    const id8 = sha256(['id', batch, spec.id, o.sample]).slice(0, 8);
    return { id: `${batch}--${spec.id}--${mock ? 'm' : ''}${o.sample}`, id8 };
  }
  const what = [spec.model, spec.prompt, spec.negative_prompt, canonicalParams(spec.params), o.seed, o.sample];
  const hash = sha256(mock ? [MOCK_API_IDENTITY, ...what] : what);
  return { id: `${batch}--${hash.slice(0, 24)}`, id8: hash.slice(0, 8) };
}

/**
 * The identity of every job a batch's specs make, computed once and held compactly, so a batch of
 * 100,000 prompts is planned without holding 100,000 job payloads: payloads are built chunk by chunk.
 */
export interface JobIdentities {
  /** Job ids in spec, sample order, identical jobs collapsed into the first. */
  ids: string[];
  id8s: string[];
  spec: Uint32Array;
  sample: Uint32Array;
  seed: Float64Array;
  /** List price of each job, in micro-credits (sums stay exact). */
  microCredits: Float64Array;
  collapsed: number;
}

/**
 * Builds the identities of a batch's jobs from its specs, a chunk at a time as they are read, so the
 * specs themselves need not be kept: `add` takes the next chunk (specs numbered on from the last).
 */
export function identityBuilder(batch: string, api: string) {
  const seen = new Set<string>();
  const ids: string[] = [];
  const id8s: string[] = [];
  const specOf: number[] = [];
  const sampleOf: number[] = [];
  const seedOf: number[] = [];
  const microOf: number[] = [];
  let collapsed = 0;
  let specs = 0;
  return {
    /** Adds the jobs of `chunk`; returns the number of its first job (jobs of the chunk follow it). */
    add(chunk: readonly PromptSpec[]): number {
      const first = ids.length;
      for (const spec of chunk) {
        const k = specs++;
        for (let sample = 0; sample < spec.samples; sample++) {
          const seed = seedFor(batch, spec, sample);
          const { id, id8 } = jobIdFor(batch, spec, { seed, sample, api });
          if (seen.has(id)) {
            collapsed++;
            continue;
          }
          seen.add(id);
          ids.push(id);
          id8s.push(id8);
          specOf.push(k);
          sampleOf.push(sample);
          seedOf.push(seed);
          microOf.push(Math.round(creditsPerImage(spec.model, spec.params) * 1e6));
        }
      }
      return first;
    },
    /** Jobs so far. */
    get jobs(): number {
      return ids.length;
    },
    /** The spec (its number among all added) and 8 digits of job `n`. */
    job(n: number): { spec: number; id: string; id8: string } {
      return { spec: specOf[n]!, id: ids[n]!, id8: id8s[n]! };
    },
    finish(): JobIdentities {
      seen.clear();
      return {
        ids,
        id8s,
        spec: Uint32Array.from(specOf),
        sample: Uint32Array.from(sampleOf),
        seed: Float64Array.from(seedOf),
        microCredits: Float64Array.from(microOf),
        collapsed,
      };
    },
  };
}

/**
 * The identities of every job `specs` make, all specs at hand (enqueue builds them a chunk at a time).
 * @public
 */
export function identifyJobs(specs: readonly PromptSpec[], batch: string, api: string): JobIdentities {
  const b = identityBuilder(batch, api);
  b.add(specs);
  return b.finish();
}

/**
 * The payload of job `n` of `ident`, made from its `spec`, numbered `index` in its batch (the file
 * name starts with it); `file`: the name it already has on disk (a failed job that runs again keeps it).
 */
export function buildJob(
  spec: PromptSpec,
  ident: JobIdentities,
  n: number,
  opts: { batch: string; api: string; index: number; file?: string },
): PlannedJob {
  const id8 = ident.id8s[n]!;
  const data: JobData = {
    v: 1,
    batch: opts.batch,
    api: opts.api,
    source: spec.source,
    line: spec.line,
    index: opts.index,
    sample: ident.sample[n]!,
    prompt: spec.prompt,
    negative_prompt: spec.negative_prompt,
    model: spec.model,
    params: spec.params,
    seed: ident.seed[n]!,
    credits: ident.microCredits[n]! / 1e6,
    file: opts.file ?? imageFileName(opts.index, spec.prompt, id8, outputExtension(spec.params)),
    rate_limited: 0,
    maybe_billed: 0,
    storage_delays: 0,
  };
  return { id: ident.ids[n]!, id8, data };
}

/** Credits of the jobs `ns` of `ident` (all of them when omitted). */
export function creditsOf(ident: JobIdentities, ns?: Iterable<number>): number {
  let micro = 0;
  if (ns === undefined) for (const m of ident.microCredits) micro += m;
  else for (const n of ns) micro += ident.microCredits[n]!;
  return micro / 1e6;
}
