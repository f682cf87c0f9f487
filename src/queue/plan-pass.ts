/**
 * The first of enqueue's two passes over the prompt files: it validates every line and, as the
 * specs stream by, keeps only what deciding about the batch needs (job identities, counts, the
 * pre-flight findings, the v1 engines in use, and which jobs may already be on disk), never the
 * specs themselves. The second pass reads the files again and builds the jobs from the specs.
 */
import { MODELS, outputExtension, type ModelId } from '../models.js';
import type { PromptProblem } from '../errors.js';
import type { PromptSpec } from '../prompts/types.js';
import type { PreflightCheck } from '../prompts/preflight.js';
import type { BatchScan, JobOnDisk } from '../output/batch-scan.js';
import { slugify } from '../output/paths.js';
import { identityBuilder, type JobIdentities } from './plan.js';

/** Lines named per v1 engine when the API does not list it: enough to find them. */
const MAX_ENGINE_LINES = 1000;
const EXAMPLES = 5;

/** A job whose 8 digits match a sidecar in the batch folder: what judging it on disk needs. */
export interface DiskCandidate extends JobOnDisk {
  n: number;
  ext: string;
}

export interface PlanPass {
  ident: JobIdentities;
  /** Specs (prompts after variants) the files make. */
  prompts: number;
  examples: string[];
  preflight: PromptProblem[];
  /** The v1 engine of each job that uses one, by job number. */
  v1Jobs: Map<number, ModelId>;
  /** The lines asking for each v1 engine (at most MAX_ENGINE_LINES each). */
  v1Lines: Map<ModelId, Array<{ file: string; line: number }>>;
  /** Jobs that may be on disk already (their sidecar's digits are in the folder). */
  candidates: DiskCandidate[];
  /** One number per spec, checked in the second pass: a file that changed in between is refused. */
  fingerprints: Uint32Array;
}

/** FNV-1a over what makes a spec: cheap enough for every line, enough to notice an edited file. */
export function fingerprint(spec: PromptSpec): number {
  const text = `${spec.source}\0${spec.line}\0${spec.model}\0${spec.prompt}\0${spec.negative_prompt}\0${spec.seed}\0${spec.samples}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Collects a PlanPass from the chunks of a validating pass: `look` each chunk, then `finish`. */
export function planCollector(
  batch: string,
  o: { api: string; checks: readonly PreflightCheck[]; scan: BatchScan | null },
) {
  const { checks, scan } = o;
  const builder = identityBuilder(batch, o.api);
  const examples = new Set<string>();
  const seenProblems = new Set<string>();
  const preflight: PromptProblem[] = [];
  const v1Jobs = new Map<number, ModelId>();
  const v1Lines = new Map<ModelId, Array<{ file: string; line: number }>>();
  const candidates: DiskCandidate[] = [];
  const fingerprints: number[] = [];
  let offset = 0;

  const noteSpec = (spec: PromptSpec) => {
    fingerprints.push(fingerprint(spec));
    if (examples.size < EXAMPLES) examples.add(spec.prompt);
    if (MODELS[spec.model].family !== 'v1') return;
    const lines = v1Lines.get(spec.model) ?? [];
    const last = lines.at(-1);
    if (lines.length < MAX_ENGINE_LINES && (last?.file !== spec.source || last.line !== spec.line))
      lines.push({ file: spec.source, line: spec.line });
    v1Lines.set(spec.model, lines);
  };
  const noteJob = (chunk: readonly PromptSpec[], n: number) => {
    const job = builder.job(n);
    const spec = chunk[job.spec - offset]!;
    if (MODELS[spec.model].family === 'v1') v1Jobs.set(n, spec.model);
    if (scan?.sidecarsById8.has(job.id8))
      candidates.push({ n, id: job.id, id8: job.id8, slug: slugify(spec.prompt), ext: outputExtension(spec.params) });
  };
  return {
    look(chunk: PromptSpec[]): void {
      const first = builder.add(chunk);
      for (const spec of chunk) noteSpec(spec);
      for (let n = first; n < builder.jobs; n++) noteJob(chunk, n);
      // A check sees the batch a chunk at a time; a line's finding is kept once.
      for (const p of checks.flatMap((check) => check({ specs: chunk, jobs: builder.jobs }))) {
        const key = `${p.file}\0${p.line}\0${p.field}\0${p.message}`;
        if (!seenProblems.has(key)) preflight.push(p);
        seenProblems.add(key);
      }
      offset += chunk.length;
    },
    finish(): PlanPass {
      return {
        ident: builder.finish(),
        prompts: offset,
        examples: [...examples],
        preflight,
        v1Jobs,
        v1Lines,
        candidates,
        fingerprints: Uint32Array.from(fingerprints),
      };
    },
  };
}
